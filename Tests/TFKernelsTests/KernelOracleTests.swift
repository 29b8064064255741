import TFCore
import TFKernels
import TFTestSupport
import XCTest

/// Each forward kernel against a naive double-precision oracle, on odd shapes (tails of the
/// 16-lane loops included). Tolerance: rtol 1e-5 of the largest reference value, atol 1e-6.
final class KernelOracleTests: XCTestCase {
    var rng = SeededRNG(seed: 42)

    func random(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in Float(rng.normal()) * scale } }

    func assertClose(_ a: [Float], _ b: [Double], rtol: Double = 1e-5, _ what: String, line: UInt = #line) {
        let c = Comparison(a, b.map(Float.init), rtol: rtol)
        XCTAssertTrue(c.passed, "\(what): \(c)", line: line)
    }

    func testLayerNorm() {
        for (rows, dim) in [(3, 37), (5, 64), (1, 17)] {
            let x = random(rows * dim, scale: 3), w = random(dim), b = random(dim)
            var out = [Float](repeating: 0, count: rows * dim), mean = [Float](repeating: 0, count: rows), rstd = mean
            layerNormForward(out: &out, mean: &mean, rstd: &rstd, x: x, weight: w, bias: b, rows: rows, dim: dim, eps: 1e-5)
            var expected = [Double]()
            for r in 0..<rows {
                let row = x[(r * dim)..<((r + 1) * dim)].map(Double.init)
                let mu = row.reduce(0, +) / Double(dim)
                let v = row.map { ($0 - mu) * ($0 - mu) }.reduce(0, +) / Double(dim)
                expected += row.indices.map { (row[$0] - mu) / (v + 1e-5).squareRoot() * Double(w[$0 - row.startIndex]) + Double(b[$0 - row.startIndex]) }
                XCTAssertEqual(Double(mean[r]), mu, accuracy: 1e-5)
            }
            assertClose(out, expected, "layernorm \(rows)x\(dim)")
        }
    }

    /// Both attention paths against a double-precision oracle: OpenBLAS (head size 8) and the
    /// register-tiled kernel (head sizes 16 and 32, token counts with partial tiles, 144).
    typealias AttentionHead = (_ out: UnsafeMutablePointer<Float>, _ probs: UnsafeMutablePointer<Float>, _ qkv: UnsafePointer<Float>,
                               _ tokens: Int, _ dim: Int, _ heads: Int, _ head: Int, _ scratch: UnsafeMutablePointer<Float>) -> Void
    typealias Softmax = (_ x: UnsafeMutablePointer<Float>, _ rows: Int, _ cols: Int) -> Void

    func testAttentionHead() {
        checkAttentionHead { attentionHeadForward(out: $0, probs: $1, qkv: $2, tokens: $3, dim: $4, heads: $5, head: $6, scratch: $7) }
    }

    /// Either build of `attentionHeadForward` (AVX2 or AVX-512) against a float64 oracle.
    func checkAttentionHead(_ attention: AttentionHead, line: UInt = #line) {
        for (tokens, dim, heads) in [(13, 24, 3), (13, 48, 3), (37, 64, 2), (50, 96, 3), (144, 64, 2), (5, 32, 1)] {
            let hd = dim / heads
            let qkv = random(tokens * 3 * dim)
            var out = [Float](repeating: 0, count: tokens * dim), probs = [Float](repeating: 0, count: tokens * tokens)
            var scratch = [Float](repeating: .nan, count: attentionScratchCount(tokens: tokens, headDim: hd))
            var allProbs = [Float]()
            for h in 0..<heads {
                attention(&out, &probs, qkv, tokens, dim, heads, h, &scratch)
                allProbs += probs
            }
            let q = qkv.map(Double.init)
            func at(_ token: Int, _ part: Int, _ h: Int, _ c: Int) -> Double { q[token * 3 * dim + part * dim + h * hd + c] }
            var expected = [Double](repeating: 0, count: tokens * dim), expectedProbs = [Double]()
            for h in 0..<heads {
                for i in 0..<tokens {
                    var s = [Double](repeating: 0, count: tokens)
                    for j in 0..<tokens {
                        var dot = 0.0
                        for c in 0..<hd { dot += at(i, 0, h, c) * at(j, 1, h, c) }
                        s[j] = dot / Double(hd).squareRoot()
                    }
                    let m = s.max()!
                    s = s.map { Foundation.exp($0 - m) }
                    let z = s.reduce(0, +)
                    expectedProbs += s.map { $0 / z }
                    for c in 0..<hd {
                        var acc = 0.0
                        for j in 0..<tokens { acc += s[j] / z * at(j, 2, h, c) }
                        expected[i * dim + h * hd + c] = acc
                    }
                }
            }
            assertClose(out, expected, "attention \(tokens) tokens, head size \(hd)", line: line)
            assertClose(allProbs, expectedProbs, "attention probabilities \(tokens) tokens, head size \(hd)", line: line)
        }
    }

    /// Attention backward (after either forward path) against float64: dV = Pᵀ·dO,
    /// dS = P ⊙ (dO·Vᵀ − rowsum), dQ = s·dS·K, dK = s·dSᵀ·Q.
    func testAttentionHeadBackward() {
        for (tokens, dim, heads) in [(13, 24, 3), (37, 64, 2), (144, 64, 2), (5, 32, 1)] {
            let hd = dim / heads, s = 1 / Double(hd).squareRoot()
            let qkv = random(tokens * 3 * dim), dout = random(tokens * dim)
            var out = [Float](repeating: 0, count: tokens * dim), probs = [Float](repeating: 0, count: heads * tokens * tokens)
            var scratch = [Float](repeating: .nan, count: max(tokens * tokens, attentionScratchCount(tokens: tokens, headDim: hd)))
            var dqkv = [Float](repeating: .nan, count: tokens * 3 * dim)
            for h in 0..<heads {
                probs.withUnsafeMutableBufferPointer { p in
                    attentionHeadForward(out: &out, probs: p.baseAddress! + h * tokens * tokens, qkv: qkv, tokens: tokens, dim: dim,
                                         heads: heads, head: h, scratch: &scratch)
                }
                probs.withUnsafeBufferPointer { p in
                    attentionHeadBackward(dqkv: &dqkv, scratch: &scratch, dout: dout, probs: p.baseAddress! + h * tokens * tokens,
                                          qkv: qkv, tokens: tokens, dim: dim, heads: heads, head: h)
                }
            }
            var expected = [Double](repeating: 0, count: tokens * 3 * dim)
            func at(_ i: Int, _ part: Int, _ h: Int, _ c: Int) -> Double { Double(qkv[i * 3 * dim + part * dim + h * hd + c]) }
            for h in 0..<heads {
                let p = { (i: Int, j: Int) in Double(probs[(h * tokens + i) * tokens + j]) }
                let dO = { (i: Int, c: Int) in Double(dout[i * dim + h * hd + c]) }
                var dS = [[Double]](repeating: [Double](repeating: 0, count: tokens), count: tokens)
                for i in 0..<tokens {
                    let dP = (0..<tokens).map { j in (0..<hd).reduce(0.0) { $0 + dO(i, $1) * at(j, 2, h, $1) } }
                    let dot = (0..<tokens).reduce(0.0) { $0 + dP[$1] * p(i, $1) }
                    for j in 0..<tokens { dS[i][j] = p(i, j) * (dP[j] - dot) }
                }
                for i in 0..<tokens {
                    for c in 0..<hd {
                        var dq = 0.0, dk = 0.0, dv = 0.0
                        for j in 0..<tokens {
                            dq += dS[i][j] * at(j, 1, h, c)
                            dk += dS[j][i] * at(j, 0, h, c)
                            dv += p(j, i) * dO(j, c)
                        }
                        expected[i * 3 * dim + h * hd + c] = s * dq
                        expected[i * 3 * dim + dim + h * hd + c] = s * dk
                        expected[i * 3 * dim + 2 * dim + h * hd + c] = dv
                    }
                }
            }
            assertClose(dqkv, expected, "attention backward \(tokens) tokens, head size \(hd)")
        }
    }

    /// The vectorised exp against libm over softmax's range and beyond.
    func testSoftmaxMatchesExactExp() {
        checkSoftmax { softmaxRowsForward($0, rows: $1, cols: $2) }
    }

    /// Either build of `softmaxRowsForward` against exact exponentials in float64.
    func checkSoftmax(_ softmax: Softmax, line: UInt = #line) {
        for cols in [144, 16, 19, 3] {
            let x = random(4 * cols, scale: 30)
            var y = x
            softmax(&y, 4, cols)
            var expected = [Double]()
            for r in 0..<4 {
                let row = x[(r * cols)..<((r + 1) * cols)].map(Double.init)
                let m = row.max()!
                let e = row.map { Foundation.exp($0 - m) }
                expected += e.map { $0 / e.reduce(0, +) }
            }
            assertClose(y, expected, rtol: 1e-6, "softmax \(cols) columns", line: line)
        }
    }

    func testBatchNormEvalAndTrain() {
        let rows = 5, f = 19
        let x = random(rows * f, scale: 2), w = random(f), b = random(f)
        var rm = random(f), rv = random(f).map { abs($0) + 0.5 }
        let rm0 = rm, rv0 = rv
        var out = [Float](repeating: 0, count: rows * f)
        batchNormForward(out: &out, x: x, rows: rows, features: f, weight: w, bias: b, runningMean: &rm, runningVar: &rv,
                         eps: 2e-5, useBatchStatistics: false, updateRunning: false)
        assertClose(out, (0..<(rows * f)).map { i in
            let c = i % f
            return (Double(x[i]) - Double(rm0[c])) / (Double(rv0[c]) + 2e-5).squareRoot() * Double(w[c]) + Double(b[c])
        }, "batchnorm eval")
        batchNormForward(out: &out, x: x, rows: rows, features: f, weight: w, bias: b, runningMean: &rm, runningVar: &rv,
                         eps: 2e-5, useBatchStatistics: true, updateRunning: true)
        var expected = [Double](repeating: 0, count: rows * f), newMean = [Double](), newVar = [Double]()
        for c in 0..<f {
            let col = (0..<rows).map { Double(x[$0 * f + c]) }
            let mu = col.reduce(0, +) / Double(rows)
            let v = col.map { ($0 - mu) * ($0 - mu) }.reduce(0, +)
            for r in 0..<rows { expected[r * f + c] = (col[r] - mu) / (v / Double(rows) + 2e-5).squareRoot() * Double(w[c]) + Double(b[c]) }
            newMean.append(0.9 * Double(rm0[c]) + 0.1 * mu)
            newVar.append(0.9 * Double(rv0[c]) + 0.1 * v / Double(rows - 1))
        }
        assertClose(out, expected, "batchnorm train")
        assertClose(rm, newMean, "running mean")
        assertClose(rv, newVar, "running var")
    }

    func testRowLinearMatchesOracleAndIsRowIndependent() {
        for bf16Weights in [false, true] {
            for (rows, k, n) in [(1, 33, 5), (6, 100, 7), (4, 64, 16), (9, 31, 3)] {
                let x = random(rows * k), w = random(n * k)
                let halves = w.map(BF16Weights.round), used = bf16Weights ? w.map(bf16) : w
                func run(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ rows: Int) {
                    if bf16Weights {
                        halves.withUnsafeBufferPointer {
                            rowLinearForward(out: out, x: x, weight: BF16Weights($0.baseAddress!), rows: rows, inFeatures: k,
                                             outFeatures: n, outputs: 0..<n)
                        }
                    } else {
                        w.withUnsafeBufferPointer {
                            rowLinearForward(out: out, x: x, weight: $0.baseAddress!, rows: rows, inFeatures: k, outFeatures: n,
                                             outputs: 0..<n)
                        }
                    }
                }
                var out = [Float](repeating: .nan, count: rows * n)
                run(&out, x, rows)
                assertClose(out, (0..<(rows * n)).map { i in
                    (0..<k).reduce(0.0) { $0 + Double(x[(i / n) * k + $1]) * Double(used[(i % n) * k + $1]) }
                }, "row linear \(rows)x\(k)x\(n), bf16 weights \(bf16Weights)")
                for r in 0..<rows {
                    var single = [Float](repeating: .nan, count: n)
                    run(&single, Array(x[(r * k)..<((r + 1) * k)]), 1)
                    XCTAssertEqual(single, Array(out[(r * n)..<((r + 1) * n)]), "row \(r) depends on its batch")
                }
            }
        }
        XCTAssertEqual(BF16Weights.round(1), 0x3f80)
        XCTAssertEqual(BF16Weights.round(Float(bitPattern: 0x3f80_8000)), 0x3f80, "a tie rounds to even")
        XCTAssertEqual(BF16Weights.round(Float(bitPattern: 0x3f81_8000)), 0x3f82, "a tie rounds to even")
        XCTAssertTrue(Float(bitPattern: UInt32(BF16Weights.round(.nan)) << 16).isNaN)
    }

    /// The value bf16 rounding (to nearest, ties to even) gives `x`, as oneDNN's conversion.
    func bf16(_ x: Float) -> Float {
        let u = x.bitPattern
        return Float(bitPattern: (u &+ 0x7fff &+ ((u >> 16) & 1)) & 0xffff_0000)
    }

    func testTokenLinearMatchesOracleForEveryEpilogueTileAndThreadCount() throws {
        let precisions = Precision.allCases.filter { $0 == .fp32 || MatmulBackend.supportsBF16 }
        for precision in precisions {
            for (images, tokens, k, n) in [(3, 7, 20, 45), (2, 144, 96, 288), (1, 37, 243, 16)] {
                let x = random(images * tokens * k, scale: 2), w = random(n * k), bias = random(n), old = random(images * tokens * n)
                let xr = precision == .bf16 ? x.map(bf16) : x, wr = precision == .bf16 ? w.map(bf16) : w
                let product = (0..<(images * tokens * n)).map { i in
                    (0..<k).reduce(0.0) { $0 + Double(xr[(i / n) * k + $1]) * Double(wr[(i % n) * k + $1]) }
                }
                let linear = try TokenLinear(inFeatures: k, outFeatures: n, precision: precision, workers: 3)
                try linear.pack(w)
                for threads in [1, 2, 3] {
                    let pool = try WorkerPool(threadCount: threads)
                    for tiles in Set([1, 2, min(3, tokens)]) {
                        for epilogue in [LinearEpilogue.plain, .bias, .biasAccumulate] {
                            var out = epilogue == .biasAccumulate ? old : [Float](repeating: .nan, count: old.count)
                            try linear.forward(pool: pool, images: images, tokens: tokens, tilesPerImage: tiles, x: x, out: &out,
                                               bias: bias, epilogue: epilogue)
                            let expected = product.indices.map { i -> Double in
                                let v = product[i] + (epilogue == .plain ? 0 : Double(bias[i % n]))
                                switch epilogue {
                                case .plain, .bias: return v
                                case .biasAccumulate: return Double(old[i]) + v
                                }
                            }
                            assertClose(out, expected, "\(precision) \(images)x\(tokens)x\(k)→\(n), \(threads) threads, \(tiles) tiles, \(epilogue)")
                        }
                    }
                }
            }
        }
    }

    func testTokenLinearBackwardProductsMatchOracle() throws {
        for (images, tokens, k, n) in [(3, 7, 20, 45), (2, 144, 96, 288), (1, 37, 243, 16)] {
            let rows = images * tokens
            let x = random(rows * k), w = random(n * k), dy = random(rows * n), dw0 = random(n * k)
            let linear = try TokenLinear(inFeatures: k, outFeatures: n, precision: .fp32, workers: 3)
            var unused = [Float](repeating: 0, count: rows * k)
            XCTAssertThrowsError(try linear.backwardInput(pool: try WorkerPool(threadCount: 1), images: images, tokens: tokens,
                                                          tilesPerImage: 1, dy: dy, dx: &unused),
                                 "input gradient before packForBackward")
            try linear.packForBackward(w)
            let dxExpected = (0..<(rows * k)).map { i in
                (0..<n).reduce(0.0) { $0 + Double(dy[(i / k) * n + $1]) * Double(w[$1 * k + i % k]) }
            }
            let dwExpected = (0..<(n * k)).map { i in
                (0..<rows).reduce(Double(dw0[i])) { $0 + Double(dy[$1 * n + i / k]) * Double(x[$1 * k + i % k]) }
            }
            for threads in [1, 2, 3] {
                let pool = try WorkerPool(threadCount: threads)
                var dx = [Float](repeating: .nan, count: rows * k), dw = dw0
                try linear.backwardInput(pool: pool, images: images, tokens: tokens, tilesPerImage: min(2, tokens), dy: dy, dx: &dx)
                try linear.backwardWeights(pool: pool, rows: rows, dy: dy, x: x, dweight: &dw)
                assertClose(dx, dxExpected, "dX \(images)x\(tokens)x\(k)→\(n), \(threads) threads")
                assertClose(dw, dwExpected, "dW \(images)x\(tokens)x\(k)→\(n), \(threads) threads")
            }
        }
    }

    func testTokenLinearRowsDoNotDependOnTheBatch() throws {
        let tokens = 144, k = 64, n = 96
        let x = random(5 * tokens * k), w = random(n * k)
        for precision in Precision.allCases where precision == .fp32 || MatmulBackend.supportsBF16 {
            let linear = try TokenLinear(inFeatures: k, outFeatures: n, precision: precision, workers: 2)
            try linear.pack(w)
            let pool = try WorkerPool(threadCount: 2)
            var all = [Float](repeating: 0, count: 5 * tokens * n)
            try linear.forward(pool: pool, images: 5, tokens: tokens, tilesPerImage: 2, x: x, out: &all)
            for image in 0..<5 {
                var one = [Float](repeating: 0, count: tokens * n)
                try Array(x[(image * tokens * k)..<((image + 1) * tokens * k)]).withUnsafeBufferPointer {
                    try linear.forward(pool: pool, images: 1, tokens: tokens, tilesPerImage: 2, x: $0.baseAddress!, out: &one)
                }
                XCTAssertEqual(one, Array(all[(image * tokens * n)..<((image + 1) * tokens * n)]), "\(precision) image \(image)")
            }
        }
    }

    func testTokenLinearRefusesMisuse() throws {
        let linear = try TokenLinear(inFeatures: 8, outFeatures: 16, precision: .fp32, workers: 1)
        var out = [Float](repeating: 0, count: 16)
        let x = [Float](repeating: 1, count: 8)
        XCTAssertThrowsError(try linear.forward(pool: try WorkerPool(threadCount: 1), images: 1, tokens: 1, tilesPerImage: 1,
                                                x: x, out: &out)) { XCTAssertEqual(($0 as? TransFaceError)?.kind, .misuse) }
        try linear.pack([Float](repeating: 0.5, count: 128))
        XCTAssertThrowsError(try linear.forward(pool: try WorkerPool(threadCount: 2), images: 1, tokens: 1, tilesPerImage: 1,
                                                x: x, out: &out), "more workers than the Linear was made for")
        XCTAssertThrowsError(try linear.forward(pool: try WorkerPool(threadCount: 1), images: 1, tokens: 1, tilesPerImage: 1,
                                                x: x, out: &out, epilogue: .bias), "an epilogue with a bias needs one")
        if !MatmulBackend.supportsBF16 {
            XCTAssertThrowsError(try TokenLinear(inFeatures: 8, outFeatures: 16, precision: .bf16, workers: 1))
        }
    }

    func testElementwiseKernels() {
        let rows = 3, cols = 21
        let x = random(rows * cols, scale: 5), bias = random(cols)
        for act in [Activation.none, .relu, .relu6, .sigmoid] {
            var y = x
            biasActivationForward(&y, bias: bias, rows: rows, cols: cols, activation: act)
            assertClose(y, x.indices.map { i in
                let v = Double(x[i]) + Double(bias[i % cols])
                switch act {
                case .none: return v
                case .relu: return max(v, 0)
                case .relu6: return min(max(v, 0), 6)
                case .sigmoid: return 1 / (1 + Foundation.exp(-v))
                }
            }, "activation \(act)")
        }
        var s = x
        softmaxRowsForward(&s, rows: rows, cols: cols)
        for r in 0..<rows {
            let row = x[(r * cols)..<((r + 1) * cols)].map(Double.init), m = row.max()!
            let z = row.map { Foundation.exp($0 - m) }.reduce(0, +)
            assertClose(Array(s[(r * cols)..<((r + 1) * cols)]), row.map { Foundation.exp($0 - m) / z }, "softmax")
        }
        var std = [Float](repeating: 0, count: rows)
        rowStdForward(out: &std, x: x, rows: rows, cols: cols)
        assertClose(std, (0..<rows).map { r in
            let row = x[(r * cols)..<((r + 1) * cols)].map(Double.init), mu = row.reduce(0, +) / Double(cols)
            return (row.map { ($0 - mu) * ($0 - mu) }.reduce(0, +) / Double(cols - 1)).squareRoot()
        }, "unbiased std")
        var resid = x
        let branch = random(rows * cols)
        for scale: Float in [1, 0, 1.25] {
            residualForward(out: &resid, x: x, y: branch, rows: rows, cols: cols, scale: scale)
            assertClose(resid, x.indices.map { Double(x[$0]) + Double(scale) * Double(branch[$0]) }, "residual, scale \(scale)")
        }
    }

    func testPatchIm2colOrderAndMirror() {
        let width = 20, patch = 3, grid = 6, channels = 3
        let image = (0..<(width * width * channels)).map { UInt8($0 % 251) }
        let lut = (0..<(3 * 256)).map { Float($0) }
        for mirror in [false, true] {
            var out = [Float](repeating: 0, count: grid * grid * channels * patch * patch)
            patchIm2col(out: &out, image: image, width: width, channels: channels, patch: patch, grid: grid, lut: lut, mirror: mirror)
            for gy in 0..<grid { for gx in 0..<grid { for c in 0..<channels { for ky in 0..<patch { for kx in 0..<patch {
                let x = gx * patch + kx, y = gy * patch + ky
                let src = Int(image[(y * width + (mirror ? width - 1 - x : x)) * channels + c])
                XCTAssertEqual(out[(gy * grid + gx) * 27 + c * 9 + ky * 3 + kx], Float(c * 256 + src))
            } } } } }
        }
    }
}

import Foundation
