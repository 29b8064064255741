import ArgumentParser
import TFConvert
import TFCore
import TFModel

/// `transface convert-detector`: facenet-pytorch's MTCNN weights to a detector file
/// (TFConvert's `DetectorConverter`, TFModel's `DetectorModelFile`).
struct ConvertDetectorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert-detector",
        abstract: "Convert facenet-pytorch's MTCNN weights (pnet.pt, rnet.pt, onet.pt) to a detector file.",
        discussion: """
            Reads the three state_dicts that ship in the facenet-pytorch wheel (MIT licence; \
            legacy torch.save files, read without torch through the safe unpickler), given as \
            files or straight from the wheel with --facenet-wheel, and writes one detector file \
            (.tfd: the model file container, kind detector) with facenet-pytorch's default \
            MTCNN settings.
            Example: pip download facenet-pytorch==2.6.0 --no-deps -d /tmp/fnp && \
            transface convert-detector --facenet-wheel /tmp/fnp/facenet_pytorch-2.6.0-py3-none-any.whl -o mtcnn.tfd
            """)

    @Argument(help: "pnet.pt rnet.pt onet.pt, in that order (or none with --facenet-wheel).") var sources: [String] = []
    @Option(name: .long, help: "A facenet-pytorch wheel (.whl) to read the three files from.") var facenetWheel: String?
    @Option(name: .shortAndLong, help: "Detector file to write (.tfd).") var output: String
    @Flag(name: .shortAndLong, help: "Print only errors.") var quiet = false

    func validate() throws {
        guard (facenetWheel == nil) == (sources.count == 3), facenetWheel == nil || sources.isEmpty else {
            throw ValidationError("give PNET.pt RNET.pt ONET.pt, or --facenet-wheel WHEEL.whl")
        }
    }

    func run() throws {
        let model: DetectorModel, used: [String]
        if let facenetWheel {
            model = try DetectorConverter.convert(facenetWheel: facenetWheel)
            used = [facenetWheel]
        } else {
            model = try DetectorConverter.convert(pnet: sources[0], rnet: sources[1], onet: sources[2])
            used = sources
        }
        try DetectorModelFile.save(model, to: output, metadata: DetectorConverter.metadata(sources: used))
        guard !quiet else { return }
        let c = model.config
        print("detector: MTCNN, \(DetectorModel.layout.count) tensors, min_face_size \(c.minFaceSize), scale_factor \(c.scaleFactor), thresholds \(c.thresholds)")
        print("wrote \(output)")
    }
}
