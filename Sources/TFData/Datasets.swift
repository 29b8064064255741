import TFCore

/// One training sample as stored: its class and its encoded image (JPEG, PNG, PGM... bytes).
public struct EncodedSample {
    public var label: Int32
    public var image: [UInt8]
    public init(label: Int32, image: [UInt8]) { self.label = label; self.image = image }
}

/// A labelled set of encoded face images. `sample(at:)` must be callable from several threads
/// at once (the loader's workers call it).
public protocol FaceDataset: AnyObject {
    var count: Int { get }
    /// Number of classes (labels are 0..<numClasses), when known.
    var numClasses: Int? { get }
    func sample(at index: Int) throws -> EncodedSample
    /// A name for messages: the file path or the record key.
    func name(at index: Int) -> String
}

// MARK: - RecordIO datasets

/// An InsightFace training set in RecordIO form: `train.rec`, `train.idx` and (optionally)
/// `property` in one folder. Both layouts of arcface_torch's `MXFaceDataset` are read:
///
/// * legacy (MS1MV2 "faces_emore"): record 0 has `flag > 0` and labels `[first, end]`; images are
///   keys `1 ..< first`, keys `first ..< end` hold each identity's `[start, end)` key range;
/// * flat (RecBuilder, im2rec, shuffled sets): record 0 has `flag == 0`; every key of the index
///   is an image, in index order.
///
/// The label of an image record is `header.label`, or `labels[0]` when it carries several.
public final class RecordIODataset: FaceDataset {
    public enum Layout: Equatable {
        case flat
        /// `first` = first identity-record key (images are 1..<first), `end` = one past the last.
        case legacy(first: Int, end: Int)
    }

    public let records: IndexedRecordIO
    public let layout: Layout
    public let property: DatasetProperty?
    /// The record key of each image, in dataset order.
    public let imageKeys: [Int]

    /// `path` is the folder holding `train.rec`/`train.idx`, or the `.rec` file itself.
    public convenience init(path: String) throws {
        let rec = DataFiles.isDirectory(path) ? (path.hasSuffix("/") ? path : path + "/") + "train.rec" : path
        try self.init(recordPath: rec)
    }

    public init(recordPath: String, indexPath: String? = nil) throws {
        records = try IndexedRecordIO(recordPath: recordPath, indexPath: indexPath)
        let propertyPath = DataFiles.folder(of: recordPath) + "/property"
        property = DataFiles.isFile(propertyPath) ? try DatasetProperty(text: try DataFiles.readText(propertyPath, limit: 1 << 16), path: propertyPath) : nil
        guard records.count > 0 else {
            layout = .flat; imageKeys = []
            return
        }
        let firstKey = records.index.offset(ofKey: 0) != nil ? 0 : records.index.keys[0]
        let (h0, _) = try IRHeader.unpack(try records.read(key: firstKey), what: "'\(recordPath)' record \(firstKey)")
        if firstKey == 0 && h0.flag > 0 {
            guard h0.labels.count >= 2, h0.labels[0].isFinite, h0.labels[1].isFinite,
                  h0.labels[0] >= 1, h0.labels[1] >= h0.labels[0], h0.labels[1] < 4.0e9 else {
                throw TransFaceError.format("'\(recordPath)': header record 0 has labels \(h0.labels.prefix(4)), expected [first identity key, end key]")
            }
            let first = Int(h0.labels[0]), end = Int(h0.labels[1])
            guard end - first <= records.count else {
                throw TransFaceError.format("'\(recordPath)': header record 0 names identity records \(first)..<\(end), more than the \(records.count) records of the index")
            }
            for key in 1..<first where records.index.offset(ofKey: key) == nil {
                throw TransFaceError.format("'\(recordPath)': the header record names images 1..<\(first) but the index has no key \(key)")
            }
            layout = .legacy(first: first, end: end)
            imageKeys = Array(1..<first)
        } else {
            layout = .flat
            imageKeys = records.index.keys
        }
    }

    public var count: Int { imageKeys.count }

    public var numClasses: Int? {
        if let p = property { return p.numClasses }
        if case .legacy(let first, let end) = layout { return end - first }
        return nil
    }

    public func name(at index: Int) -> String {
        index >= 0 && index < imageKeys.count ? "\(records.recordPath) key \(imageKeys[index])" : "\(records.recordPath) #\(index)"
    }

    /// The header and image bytes of image `index`.
    public func record(at index: Int) throws -> (header: IRHeader, image: ArraySlice<UInt8>) {
        guard index >= 0 && index < imageKeys.count else {
            throw TransFaceError.invalidArgument("image index \(index) is outside 0..<\(imageKeys.count)")
        }
        let payload = try records.read(key: imageKeys[index])
        let (h, start) = try IRHeader.unpack(payload, what: name(at: index))
        return (h, payload[start...])
    }

    public func sample(at index: Int) throws -> EncodedSample {
        let (h, image) = try record(at: index)
        return EncodedSample(label: try h.classLabel(), image: Array(image))
    }

    /// The `[start, end)` image-key range of each identity (legacy layout only).
    public func identityRanges() throws -> [Range<Int>] {
        guard case .legacy(let first, let end) = layout else { return [] }
        return try (first..<end).map { key in
            let (h, _) = try IRHeader.unpack(try records.read(key: key), what: "'\(records.recordPath)' identity record \(key)")
            guard h.labels.count >= 2, h.labels[0].isFinite, h.labels[1].isFinite, h.labels[0] >= 0, h.labels[1] >= h.labels[0], h.labels[1] < 4.0e9 else {
                throw TransFaceError.format("'\(records.recordPath)' identity record \(key): labels \(h.labels.prefix(4)) are not a key range")
            }
            return Int(h.labels[0])..<Int(h.labels[1])
        }
    }
}

// MARK: - image folders and list files

/// Relative image paths with labels, resolved under `root`.
public struct LabeledImageList {
    public var root: String
    public var paths: [String]
    public var labels: [Int32]
    /// Class names by label when known (image folders: the folder names).
    public var classNames: [String]?

    public init(root: String, paths: [String], labels: [Int32], classNames: [String]? = nil) {
        self.root = root; self.paths = paths; self.labels = labels; self.classNames = classNames
    }

    public var count: Int { paths.count }

    public var numClasses: Int { classNames?.count ?? (labels.max().map { Int($0) + 1 } ?? 0) }

    public static let imageExtensions: Set<String> = ["jpg", "jpeg", "png", "pgm", "ppm", "pnm", "bmp", "webp"]

    static func isImage(_ name: String) -> Bool {
        guard let dot = name.lastIndex(of: ".") else { return false }
        return imageExtensions.contains(name[name.index(after: dot)...].lowercased())
    }

    /// One sub-folder per identity (labels 0, 1, ... in sorted folder-name order), image files
    /// (by extension) inside each, sorted by name. Hidden entries are ignored.
    public static func imageFolder(_ root: String) throws -> LabeledImageList {
        var paths: [String] = [], labels: [Int32] = [], names: [String] = []
        for folder in try DataFiles.list(root) where !folder.hasPrefix(".") && DataFiles.isDirectory(root + "/" + folder) {
            let files = try DataFiles.list(root + "/" + folder).filter { !$0.hasPrefix(".") && isImage($0) }
            guard !files.isEmpty else { continue }
            let label = Int32(names.count)
            names.append(folder)
            for f in files { paths.append(folder + "/" + f); labels.append(label) }
        }
        guard !paths.isEmpty else { throw TransFaceError.format("'\(root)' holds no identity folders with images") }
        return LabeledImageList(root: root, paths: paths, labels: labels, classNames: names)
    }

    public enum ListFormat {
        /// `path<TAB>label[<TAB>anything]`, an optional header line (`path  label ...`); the
        /// form of `../shared/data/*/splits/train.tsv`.
        case pathLabel
        /// im2rec `.lst`: `index<TAB>label<TAB>path`.
        case im2rec
    }

    /// A list file. Paths are relative to `root` (default: the list file's folder) and may not
    /// leave it.
    public static func listFile(_ path: String, root: String? = nil, format: ListFormat = .pathLabel) throws -> LabeledImageList {
        let base = root ?? DataFiles.folder(of: path)
        var paths: [String] = [], labels: [Int32] = []
        for (n, line) in DataFiles.lines(try DataFiles.readText(path)).enumerated() {
            let f = DataFiles.fields(line)
            if f.isEmpty || (f.count == 1 && f[0].isEmpty) || f[0].hasPrefix("#") { continue }
            let rel: Substring, labelText: Substring
            switch format {
            case .pathLabel:
                guard f.count >= 2 else { throw TransFaceError.format("'\(path)' line \(n + 1): expected 'path<TAB>label'") }
                rel = f[0]; labelText = f[1]
            case .im2rec:
                guard f.count >= 3 else { throw TransFaceError.format("'\(path)' line \(n + 1): expected 'index<TAB>label<TAB>path'") }
                rel = f[f.count - 1]; labelText = f[1]
            }
            guard let label = parseLabel(labelText) else {
                if n == 0 && paths.isEmpty { continue }  // header line
                throw TransFaceError.format("'\(path)' line \(n + 1): label '\(labelText.prefix(40))' is not an integer")
            }
            _ = try DataFiles.resolve(rel, under: base, what: "'\(path)' line \(n + 1)")
            paths.append(String(rel)); labels.append(label)
        }
        guard !paths.isEmpty else { throw TransFaceError.format("'\(path)' lists no images") }
        return LabeledImageList(root: base, paths: paths, labels: labels)
    }

    static func parseLabel(_ s: Substring) -> Int32? {
        if let v = Int32(s) { return v }
        // im2rec writes labels as floats ("3.000000")
        if let d = Double(s), d.isFinite, d == d.rounded(), d >= 0, d < 2_147_483_648 { return Int32(d) }
        return nil
    }

    /// The full path of image `i`.
    public func fullPath(_ i: Int) throws -> String {
        try DataFiles.resolve(Substring(paths[i]), under: root, what: "image \(i)")
    }
}

/// Image files on disk as a dataset (read on demand).
public final class ImageListDataset: FaceDataset {
    public let list: LabeledImageList

    public init(_ list: LabeledImageList) { self.list = list }

    public var count: Int { list.count }
    public var numClasses: Int? { list.numClasses }

    public func name(at index: Int) -> String {
        index >= 0 && index < list.count ? (list.root == "." ? list.paths[index] : list.root + "/" + list.paths[index]) : "#\(index)"
    }

    public func sample(at index: Int) throws -> EncodedSample {
        guard index >= 0 && index < list.count else {
            throw TransFaceError.invalidArgument("image index \(index) is outside 0..<\(list.count)")
        }
        return EncodedSample(label: list.labels[index], image: try DataFiles.readAll(try list.fullPath(index), limit: 1 << 30))
    }
}

// MARK: - packing

public enum RecordIOPacker {
    public enum Layout { case flat, legacy }

    public struct Options {
        public var layout: Layout = .flat
        /// Written to `property`.
        public var width = 112
        public var height = 112
        /// Re-encodes an image before it is stored (e.g. to JPEG); nil stores the file bytes
        /// as they are, as `lfw2pack` / `face2rec2` do for aligned images.
        public var transcode: ((_ bytes: [UInt8], _ name: String) throws -> [UInt8])?
        /// Base name of the record and index files (`NAME.rec`, `NAME.idx`).
        public var name = "train"
        public init() {}
    }

    public struct Summary: Equatable {
        public var images: Int
        public var classes: Int
        public var bytes: UInt64
    }

    /// Packs `dataset` into `output/train.rec`, `train.idx` and `property` (`options.name`
    /// renames the first two).
    ///
    /// Flat layout (insightface RecBuilder): image `i` has key `i`, id `i`, label = class.
    /// Legacy layout (face2rec2 / MS1MV2): images sorted by label (stable) at keys `1...N`, a
    /// header record 0 with labels `[N+1, N+1+C]`, and one record per class `c` at key `N+1+c`
    /// with labels `[start, end)`. Labels must then be `0..<C`, each with at least one image.
    @discardableResult
    public static func pack(_ dataset: FaceDataset, to output: String, options: Options = Options()) throws -> Summary {
        try DataFiles.makeDirectories(output)
        try require(!options.name.isEmpty && !options.name.contains("/"), "record name '\(options.name)' must be a file name")
        let writer = try RecordIOWriter(recordPath: output + "/\(options.name).rec")
        var order = Array(0..<dataset.count)
        var labels: [Int32] = []
        labels.reserveCapacity(dataset.count)
        func load(_ i: Int) throws -> EncodedSample {
            var s = try dataset.sample(at: i)
            if let t = options.transcode { s.image = try t(s.image, dataset.name(at: i)) }
            guard s.label >= 0 else { throw TransFaceError.format("\(dataset.name(at: i)): negative label \(s.label)") }
            return s
        }
        do {
            switch options.layout {
            case .flat:
                for i in order {
                    let s = try load(i)
                    labels.append(s.label)
                    try writer.writeImage(key: i, label: Float(s.label), id: UInt64(i), image: s.image)
                }
            case .legacy:
                // labels first (cheap for lists; RecordIO sources read each record once more)
                var all: [Int32] = []
                if let l = dataset as? ImageListDataset { all = l.list.labels } else { all = try order.map { try dataset.sample(at: $0).label } }
                order.sort { (all[$0], $0) < (all[$1], $1) }
                let n = order.count
                let classes = Int(all.max() ?? -1) + 1
                guard n + 1 + classes <= 1 << 24 else {
                    throw TransFaceError.invalidArgument("legacy RecordIO layout stores keys as float32 labels: \(n) images + \(classes) classes exceed 2^24; use the flat layout")
                }
                var start = [Int](repeating: -1, count: classes), end = [Int](repeating: -1, count: classes)
                for (k, i) in order.enumerated() {
                    let c = Int(all[i])
                    guard c >= 0 else { throw TransFaceError.format("\(dataset.name(at: i)): negative label") }
                    if start[c] < 0 { start[c] = k + 1 }
                    end[c] = k + 2
                }
                if let missing = start.firstIndex(of: -1) {
                    throw TransFaceError.invalidArgument("legacy RecordIO layout needs labels 0..<\(classes) without gaps; label \(missing) has no image")
                }
                try writer.write(key: 0, payload: IRHeader(labels: [Float(n + 1), Float(n + 1 + classes)], id: 0).pack(image: []))
                for (k, i) in order.enumerated() {
                    let s = try load(i)
                    guard s.label == all[i] else { throw TransFaceError.format("\(dataset.name(at: i)): label changed while packing") }
                    labels.append(s.label)
                    try writer.writeImage(key: k + 1, label: Float(s.label), id: UInt64(k + 1), image: s.image)
                }
                for c in 0..<classes {
                    let key = n + 1 + c
                    try writer.write(key: key, payload: IRHeader(labels: [Float(start[c]), Float(end[c])], id: UInt64(key)).pack(image: []))
                }
            }
            let classes = Int(labels.max() ?? -1) + 1
            let prop = DatasetProperty(numClasses: classes, width: options.width, height: options.height, imageCount: labels.count)
            let propWriter = try BufferedAtomicWriter(path: output + "/property")
            try propWriter.write(prop.text)
            try writer.finish()
            try propWriter.commit()
            return Summary(images: labels.count, classes: classes, bytes: try ReadableFile(path: output + "/\(options.name).rec").size)
        } catch {
            writer.abandon()
            throw error
        }
    }
}
