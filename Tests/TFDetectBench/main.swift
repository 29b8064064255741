// The detector's measurement tool, driven by bindings/python/benchmarks/mtcnn_landmarks.py and
// mtcnn_side_by_side.py (weights from TRANSFACE_MTCNN_WEIGHTS, see Tests/TFDetectTests/README.md):
//   TFDetectBench detect <truncated|facenet> <root> <list-file>
//       one JSON line per image of the list (paths relative to root): path, width, height, faces
//   TFDetectBench serve <threads>
//       reads lines "<path> <reps> [frame]" from stdin; answers "<ms per call>" after reps calls
//       (after one warm-up call); "frame" tiles the image to 1280 × 720 first.
import Foundation
import TFCore
import TFDetect
import TFDetectTestSupport
import TFImage
import TFModel

func fail(_ message: String) -> Never {
    FileHandle.standardError.write((message + "\n").data(using: .utf8)!)
    exit(2)
}

/// The image tiled (wrapping around) to `width × height`: the 1280 × 720 test frame.
func tiled(_ img: RGBImage, width: Int, height: Int) -> RGBImage {
    var px = [UInt8](repeating: 0, count: width * height * 3)
    for y in 0..<height {
        for x in 0..<width {
            let s = ((y % img.height) * img.width + (x % img.width)) * 3, d = (y * width + x) * 3
            px[d] = img.pixels[s]; px[d + 1] = img.pixels[s + 1]; px[d + 2] = img.pixels[s + 2]
        }
    }
    return RGBImage(width: width, height: height, pixels: px)
}

func detect(_ d: FaceDetector, _ img: RGBImage, _ options: DetectionOptions) throws -> [DetectedFace] {
    try img.pixels.withUnsafeBufferPointer {
        try d.detect(rgb: $0.baseAddress!, width: img.width, height: img.height, stride: img.width * 3, options: options)
    }
}

let args = CommandLine.arguments
guard args.count >= 3 else { fail("usage: TFDetectBench detect <mode> <root> <list> | serve <threads>") }
do {
    guard let model = try TestDetector.model() else { fail("no weights: no facenet-pytorch wheel") }
    switch args[1] {
    case "detect":
        guard args.count == 5, let mode = DetectionOptions.LandmarkBox(rawValue: args[2]) else { fail("detect <truncated|facenet> <root> <list>") }
        let detector = try FaceDetector(model: model, threads: 1)
        let list = try String(contentsOfFile: args[4], encoding: .utf8).split(separator: "\n").map(String.init)
        for path in list where !path.isEmpty {
            let img = try ImageDecoder.decodeFile(args[3] + "/" + path)
            let faces = try detect(detector, img, DetectionOptions(landmarkBox: mode))
            let main = FaceDetector.pickMain(faces, width: img.width, height: img.height) ?? -1
            let json = faces.map { "{\"box\":\($0.box),\"score\":\($0.score),\"landmarks\":\($0.landmarks)}" }.joined(separator: ",")
            print("{\"path\":\"\(path)\",\"width\":\(img.width),\"height\":\(img.height),\"main\":\(main),\"faces\":[\(json)]}")
        }
    case "serve":
        guard let threads = Int(args[2]) else { fail("serve <threads>") }
        let detector = try FaceDetector(model: model, threads: threads)
        print("ready"); fflush(stdout)
        while let line = readLine() {
            let f = line.split(separator: " ").map(String.init)
            guard f.count >= 2, let reps = Int(f[1]) else { fail("bad request '\(line)'") }
            var img = try ImageDecoder.decodeFile(f[0])
            if f.count > 2 && f[2] == "frame" { img = tiled(img, width: 1280, height: 720) }
            _ = try detect(detector, img, DetectionOptions())
            let t0 = DispatchTime.now().uptimeNanoseconds
            var faces = 0
            for _ in 0..<reps { faces = try detect(detector, img, DetectionOptions()).count }
            let ms = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6 / Double(reps)
            print("\(ms) \(faces)"); fflush(stdout)
        }
    default: fail("unknown command \(args[1])")
    }
} catch { fail("error: \(error)") }
