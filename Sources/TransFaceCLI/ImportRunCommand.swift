import ArgumentParser
import TFCore
import TFData
import TFTrain

/// `transface import-run`: an official train.py run (its checkpoint_gpu_<rank>.pt files) to a
/// checkpoint that `transface train --resume` continues (TFTrain's `Trainer.importOfficial`,
/// also `transface_trainer_import_official`).
struct ImportRunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import-run",
        abstract: "Import an official TransFace training run (checkpoint_gpu_<rank>.pt) as a checkpoint.",
        discussion: """
            Reads the checkpoint_gpu_<rank>.pt files that the official train.py saves (save_all_states), \
            one per rank, without torch: the backbone, the class centres (rank shards concatenated in \
            rank order), the AdamW/SGD moments and the step, so the run continues on its schedule. \
            --config is the trainer configuration (JSON, as transface_trainer_create takes; its sizes \
            must be the run's, a mismatch names the tensor). Notes say what could not be carried over \
            exactly (e.g. the data loader's position, the sampled Partial FC's moments). The official \
            model.pt is a plain state_dict: `transface convert` reads it.
            Example: transface import-run --checkpoint run/ --config trainer.json -o imported.tfc
            """)

    @Option(name: .long, parsing: .upToNextOption, help: "checkpoint_gpu_<rank>.pt files, or folders holding them.")
    var checkpoint: [String] = []
    @Option(name: .long, help: "Trainer configuration (JSON file).") var config: String
    @Option(name: .shortAndLong, help: "Checkpoint to write (.tfc).") var output: String
    @Flag(name: .shortAndLong, help: "Print only errors.") var quiet = false

    func validate() throws {
        if checkpoint.isEmpty { throw ValidationError("give --checkpoint FILE_OR_FOLDER...") }
    }

    func run() throws {
        let trainerConfig = try TrainerConfig.parse(try DataFiles.readText(config))
        let (trainer, notes) = try Trainer.importOfficial(checkpoint, config: trainerConfig)
        try trainer.saveCheckpoint(to: output)
        guard !quiet else { return }
        for n in notes { print("note: \(n)") }
        print("step \(trainer.step), next learning rate \(trainer.learningRate)")
        print("wrote \(output); continue with: transface train --resume \(output) --config RUN.json")
    }
}
