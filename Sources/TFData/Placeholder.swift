/// Module TFData (being built).
enum TFDataModule {}
