/// Module TFEval (being built).
enum TFEvalModule {}
