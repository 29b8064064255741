import ArgumentParser
import TFConvert
import TFCore

/// `transface convert`: an official PyTorch state_dict to a model file (TFConvert, which
/// `transface_convert_state_dict` and `python3 -m transface convert` run too).
struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert an official TransFace state_dict (.pt/.pth or .npz) to a model file.",
        discussion: """
            Reads a torch.save zip file (torch >= 1.6; without torch, through a safe unpickler that \
            only builds tensors) or an .npz of the official names, also a training checkpoint's \
            'state_dict_backbone' and 'module.'-prefixed names. The architecture is inferred from \
            the shapes; num_heads comes from --arch, --num-heads, or 8 (every official model). \
            The same converter runs behind transface_convert_state_dict and python3 -m transface convert.
            Example: transface convert model.pt -o vit_s.tfm --arch vit_s
            """)

    @Argument(help: "The state_dict: a torch.save .pt/.pth file or an .npz.") var source: String
    @Option(name: .shortAndLong, help: "Model file to write (.tfm).") var output: String
    @Option(name: .long, help: "Official preset (sets num_heads and the training settings).") var arch: String?
    @Option(name: .long, help: "Attention heads (default 8).") var numHeads: Int?
    @Option(name: .long, help: "Embedding size (checked against the tensors).") var embeddingSize: Int?
    @Option(name: .long, help: "Input size (default 112 when it fits the grid).") var imgSize: Int?
    @Option(name: .long, help: "Extra metadata entry KEY=VALUE (repeatable).") var metadata: [String] = []
    @Flag(name: .shortAndLong, help: "Print only errors.") var quiet = false

    func run() throws {
        let o = Converter.Options(arch: arch, numHeads: numHeads, embeddingSize: embeddingSize, imgSize: imgSize,
                                  metadata: try metadata.map(Converter.Options.metadataEntry))
        let r = try Converter.convert(source, to: output, options: o)
        guard !quiet else { return }
        for n in r.notes { print("note: \(n)") }
        let c = r.config
        print("config: \(c.arch), img \(c.imgSize), patch \(c.patchSize), embed_dim \(c.embedDim), depth \(c.depth), heads \(c.numHeads), mlp \(c.mlpHiddenDim), embedding \(c.embeddingSize)")
        print("wrote \(output)")
    }
}
