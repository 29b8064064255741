import CTransFace
import TFCore
import TFData

#if canImport(Glibc)
import Glibc
import TFWiring
#endif

/// Datasets: RecordIO training sets, packing, .bin verification sets.

@c public func transface_recordio_open(_ path: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> transface_status {
    guarded("transface_recordio_open") {
        let out = try required(out, "out_recordio")
        out.pointee = nil
        out.pointee = Handle.make(try RecordIODataset(path: try string(path, "path")))
    }
}

@c public func transface_recordio_close(_ recordio: OpaquePointer?) { Handle.release(recordio, RecordIODataset.self, "transface_recordio_close") }

@c public func transface_recordio_count(_ recordio: OpaquePointer?) -> Int {
    (try? Handle.get(recordio, RecordIODataset.self, "recordio"))?.count ?? 0
}

@c public func transface_recordio_num_classes(_ recordio: OpaquePointer?) -> Int {
    (try? Handle.get(recordio, RecordIODataset.self, "recordio"))?.numClasses ?? 0
}

@c public func transface_recordio_read(_ recordio: OpaquePointer?, _ index: Int, _ outLabel: UnsafeMutablePointer<Int32>?,
                                       _ image: UnsafeMutablePointer<UInt8>?, _ capacity: Int,
                                       _ outSize: UnsafeMutablePointer<Int>?) -> transface_status {
    guarded("transface_recordio_read") {
        let ds = try Handle.get(recordio, RecordIODataset.self, "recordio")
        let outSize = try required(outSize, "out_size")
        try require(index >= 0 && index < ds.count, "index \(index) is outside 0..<\(ds.count)")
        let (header, bytes) = try ds.record(at: index)
        let label = try header.classLabel()
        outSize.pointee = bytes.count
        outLabel?.pointee = label
        guard let image else {
            try require(capacity == 0, "image is NULL but capacity is \(capacity)")
            return
        }
        try require(capacity >= bytes.count, "capacity \(capacity) is smaller than the image's \(bytes.count) bytes")
        bytes.withUnsafeBufferPointer { image.update(from: $0.baseAddress!, count: $0.count) }
    }
}

@c public func transface_pack_default_params() -> transface_pack_params {
    var p = transface_pack_params()
    p.struct_size = UInt32(MemoryLayout<transface_pack_params>.size)
    p.layout = Int32(bitPattern: TRANSFACE_RECORDIO_FLAT.rawValue)
    p.image_width = 112
    p.image_height = 112
    p.jpeg_quality = 0
    return p
}

@c public func transface_pack_params_init(_ params: UnsafeMutablePointer<transface_pack_params>?, _ size: UInt32) -> transface_status {
    guarded("transface_pack_params_init") { try initStruct(params, size: size, defaults: transface_pack_default_params()) }
}

@c public func transface_recordio_pack(_ source: UnsafePointer<CChar>?, _ root: UnsafePointer<CChar>?, _ outputDir: UnsafePointer<CChar>?,
                                       _ params: UnsafePointer<transface_pack_params>?, _ outImages: UnsafeMutablePointer<Int>?) -> transface_status {
    guarded("transface_recordio_pack") {
        let source = try string(source, "source"), output = try string(outputDir, "output_dir")
        let p = try readStruct(params, defaults: transface_pack_default_params())
        var options = RecordIOPacker.Options()
        switch UInt32(bitPattern: p.layout) {
        case TRANSFACE_RECORDIO_FLAT.rawValue: options.layout = .flat
        case TRANSFACE_RECORDIO_LEGACY.rawValue: options.layout = .legacy
        default: throw TransFaceError.invalidArgument("unknown layout \(p.layout)")
        }
        try require(p.image_width >= 1 && p.image_height >= 1, "image size \(p.image_width)x\(p.image_height) must be positive")
        options.width = Int(p.image_width)
        options.height = Int(p.image_height)
        try require((0...100).contains(p.jpeg_quality), "jpeg_quality \(p.jpeg_quality) is outside 0...100")
        if p.jpeg_quality > 0 { options.transcode = RecordIOPacker.jpegTranscoder(quality: Int(p.jpeg_quality)) }
        let list: LabeledImageList
        if DataFiles.isDirectory(source) {
            try require(root == nil, "root must be NULL when source is an image folder")
            list = try LabeledImageList.imageFolder(source)
        } else {
            list = try LabeledImageList.listFile(source, root: root.map { String(cString: $0) })
        }
        let summary = try RecordIOPacker.pack(ImageListDataset(list), to: output, options: options)
        outImages?.pointee = summary.images
    }
}

/// What a `transface_bin *` points to: the images in one malloc'd block, so that pointers
/// handed out stay valid as long as the handle.
final class BinHandle {
    let pairs: Int
    let issame: [Bool]
    let storage: UnsafeMutablePointer<UInt8>
    let offsets: [Int]  // 2 * pairs + 1

    init(_ bin: VerificationBin) throws {
        pairs = bin.pairs
        issame = bin.issame
        var offsets = [0]
        for image in bin.images { offsets.append(offsets.last! + image.count) }
        guard let raw = malloc(max(offsets.last!, 1)) else { throw TransFaceError(.outOfMemory, "cannot allocate \(offsets.last!) bytes") }
        let base = raw.assumingMemoryBound(to: UInt8.self)
        for (i, image) in bin.images.enumerated() {
            image.withUnsafeBufferPointer { if $0.count > 0 { (base + offsets[i]).update(from: $0.baseAddress!, count: $0.count) } }
        }
        storage = base
        self.offsets = offsets
    }

    deinit { free(storage) }
}

@c public func transface_bin_open(_ path: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> transface_status {
    guarded("transface_bin_open") {
        let out = try required(out, "out_bin")
        out.pointee = nil
        out.pointee = Handle.make(try BinHandle(try VerificationBin.read(path: try string(path, "path"))))
    }
}

@c public func transface_bin_close(_ bin: OpaquePointer?) { Handle.release(bin, BinHandle.self, "transface_bin_close") }

@c public func transface_bin_pair_count(_ bin: OpaquePointer?) -> Int {
    (try? Handle.get(bin, BinHandle.self, "bin"))?.pairs ?? 0
}

@c public func transface_bin_image(_ bin: OpaquePointer?, _ index: Int, _ outData: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
                                   _ outSize: UnsafeMutablePointer<Int>?) -> transface_status {
    guarded("transface_bin_image") {
        let h = try Handle.get(bin, BinHandle.self, "bin")
        let outData = try required(outData, "out_data"), outSize = try required(outSize, "out_size")
        try require(index >= 0 && index < 2 * h.pairs, "index \(index) is outside 0..<\(2 * h.pairs)")
        outData.pointee = UnsafePointer(h.storage + h.offsets[index])
        outSize.pointee = h.offsets[index + 1] - h.offsets[index]
    }
}

@c public func transface_bin_issame(_ bin: OpaquePointer?, _ out: UnsafeMutablePointer<UInt8>?, _ capacity: Int) -> transface_status {
    guarded("transface_bin_issame") {
        let h = try Handle.get(bin, BinHandle.self, "bin")
        let out = try required(out, "out_issame")
        try require(capacity >= h.pairs, "capacity \(capacity) is smaller than the \(h.pairs) pairs")
        for (i, s) in h.issame.enumerated() { out[i] = s ? 1 : 0 }
    }
}

@c public func transface_bin_write(_ path: UnsafePointer<CChar>?, _ images: UnsafePointer<UnsafePointer<UInt8>?>?,
                                   _ sizes: UnsafePointer<Int>?, _ issame: UnsafePointer<UInt8>?, _ pairs: Int,
                                   _ proto: Int32) -> transface_status {
    guarded("transface_bin_write") {
        let path = try string(path, "path")
        try require(pairs >= 1, "pairs must be at least 1")
        let n = try checkedProduct([pairs, 2], what: "images")
        let images = try required(images, "images"), sizes = try required(sizes, "sizes"), issame = try required(issame, "issame")
        try require(proto == 0 || (2...5).contains(proto), "protocol \(proto) is not 2, 3, 4 or 5 (0 = 4)")
        var list: [[UInt8]] = []
        list.reserveCapacity(n)
        for i in 0..<n {
            let size = sizes[i]
            try require(size >= 0, "sizes[\(i)] is negative")
            if size == 0 { list.append([]); continue }
            guard let p = images[i] else { throw TransFaceError.invalidArgument("images[\(i)] is NULL") }
            list.append(Array(UnsafeBufferPointer(start: p, count: size)))
        }
        let bin = try VerificationBin(images: list, issame: (0..<pairs).map { issame[$0] != 0 })
        try bin.write(path: path, protocol: proto == 0 ? 4 : Int(proto))
    }
}
