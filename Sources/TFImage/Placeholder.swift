/// Module TFImage (being built).
enum TFImageModule {}
