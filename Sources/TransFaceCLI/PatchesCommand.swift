import ArgumentParser
import TFCore
import TFImage
import TFModel

/// `transface patches`: the SE patch-importance map (the softmax of the SE gate that ranks
/// patches for DPAP) over the aligned face, as PNG, SVG or text.
struct PatchesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "patches",
        abstract: "Show which face patches the model weighs most (SE patch weights).",
        discussion: """
            The SE module gives each of the 144 patches (a 12x12 grid of 9x9 pixels on the 112x112 \
            face) a weight; they sum to 1. -o OUT.png blends a heat map into the aligned face \
            (4x larger); -o OUT.svg draws the face with one tinted square per patch (hover for the \
            weight). Without -o the grid is printed. The top patches are always listed.
            Example: transface patches vit_s.tfm photo.jpg --landmarks lm.tsv -o patches.png
            """)

    @Argument(help: "The model file (.tfm).") var model: String
    @Argument(help: "The face image.") var image: String
    @OptionGroup var faces: FaceInputOptions
    @Option(name: .shortAndLong, help: "Output: .png or .svg.") var output: String?
    @Option(name: .long, help: "Patches to list.") var top = 7

    func validate() throws {
        if let o = output, !["png", "svg"].contains(CLISupport.lowercasedExtension(o)) { throw ValidationError("-o '\(o)' must end in .png or .svg") }
        guard top >= 0 else { throw ValidationError("--top must not be negative") }
    }

    func run() throws {
        let m = try CLISupport.loadModel(model)
        guard m.config.seGate else { throw TransFaceError.invalidArgument("'\(model)' has no SE module (se_gate off): no patch weights") }
        let face = try faces.loader(for: m, images: 1).face(image)
        let c = m.config
        var weights = [Float](repeating: 0, count: c.numPatches)
        let embedder = try CLISupport.embedder(m, threads: 1, maxBatch: 1)
        try face.withUnsafeBufferPointer { src in
            try weights.withUnsafeMutableBufferPointer { w in
                try embedder.embed(images: src.baseAddress!, count: 1, width: c.imgSize, height: c.imgSize, into: .init(patchWeights: w))
            }
        }
        let grid = c.grid
        let order = weights.indices.sorted { weights[$0] > weights[$1] }
        print("top \(min(top, order.count)) of \(order.count) patches (row, column, weight; uniform = \(CLISupport.fixed(1 / Double(order.count), 5))):")
        for i in order.prefix(top) { print("  \(i / grid) \(i % grid) \(CLISupport.fixed(Double(weights[i]), 5))") }
        guard let output else {
            for r in 0..<grid { print((0..<grid).map { CLISupport.fixed(Double(weights[r * grid + $0]) * 1000, 1) }.joined(separator: " ")) }
            print("(weights x 1000)")
            return
        }
        let lo = weights.min()!, hi = weights.max()!
        let norm = weights.map { hi > lo ? Double(($0 - lo) / (hi - lo)) : 0.5 }
        if CLISupport.lowercasedExtension(output) == "png" {
            try CLISupport.write(try heatPNG(face, size: c.imgSize, patch: c.patchSize, grid: grid, norm: norm), to: output)
        } else {
            try CLISupport.write(try svg(face, size: c.imgSize, patch: c.patchSize, grid: grid, norm: norm, weights: weights), to: output)
        }
        print("wrote \(output)")
    }

    /// A blue → green → yellow → red colour for t in [0, 1].
    static func color(_ t: Double) -> (Double, Double, Double) {
        let stops: [(Double, Double, Double)] = [(0.19, 0.07, 0.52), (0.13, 0.57, 0.55), (0.99, 0.91, 0.14), (0.85, 0.11, 0.11)]
        let x = max(0, min(1, t)) * Double(stops.count - 1)
        let i = min(Int(x), stops.count - 2), f = x - Double(i)
        let a = stops[i], b = stops[i + 1]
        return (a.0 + (b.0 - a.0) * f, a.1 + (b.1 - a.1) * f, a.2 + (b.2 - a.2) * f)
    }

    /// The face ×4 (nearest neighbour) with the colour of each pixel's patch blended in (alpha 0.5;
    /// the pixels outside the grid are left as they are).
    func heatPNG(_ face: [UInt8], size: Int, patch: Int, grid: Int, norm: [Double]) throws -> [UInt8] {
        let k = 4, w = size * k
        var out = [UInt8](repeating: 0, count: w * w * 3)
        for y in 0..<w {
            for x in 0..<w {
                let sx = x / k, sy = y / k
                let src = (sy * size + sx) * 3, dst = (y * w + x) * 3
                let px = sx / patch, py = sy / patch
                for ch in 0..<3 { out[dst + ch] = face[src + ch] }
                guard px < grid && py < grid else { continue }
                let (r, g, b) = Self.color(norm[py * grid + px])
                let tint = [r, g, b]
                for ch in 0..<3 { out[dst + ch] = UInt8((Double(face[src + ch]) * 0.5 + tint[ch] * 255 * 0.5).rounded()) }
            }
        }
        return try out.withUnsafeBufferPointer { try ImageEncoder.png($0.baseAddress!, width: w, height: w) }
    }

    /// The face as an embedded PNG with one tinted, titled square per patch.
    func svg(_ face: [UInt8], size: Int, patch: Int, grid: Int, norm: [Double], weights: [Float]) throws -> String {
        let k = 4, w = size * k
        let png = try face.withUnsafeBufferPointer { try ImageEncoder.png($0.baseAddress!, width: size, height: size) }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(w)\" height=\"\(w)\" viewBox=\"0 0 \(w) \(w)\">\n"
        s += "<image width=\"\(w)\" height=\"\(w)\" style=\"image-rendering:pixelated\" href=\"data:image/png;base64,\(CLISupport.base64(png))\"/>\n"
        for i in 0..<(grid * grid) {
            let (r, g, b) = Self.color(norm[i])
            let hex = [r, g, b].map { v -> String in let h = String(Int((v * 255).rounded()), radix: 16); return h.count == 1 ? "0" + h : h }.joined()
            s += "<rect x=\"\((i % grid) * patch * k)\" y=\"\((i / grid) * patch * k)\" width=\"\(patch * k)\" height=\"\(patch * k)\" fill=\"#\(hex)\" fill-opacity=\"0.5\"><title>row \(i / grid), column \(i % grid): \(weights[i])</title></rect>\n"
        }
        return s + "</svg>\n"
    }
}
