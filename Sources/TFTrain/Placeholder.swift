/// Module TFTrain (being built).
enum TFTrainModule {}
