"""Command line: python3 -m transface {convert, export, info, export-onnx} ...

Exit codes: 0 success; 2 the input was refused (bad or mismatched source, usage error), with one
line on stderr; 1 any other library error (one line on stderr).
"""

import argparse
import json
import sys

from . import __version__
from ._lib import Error
from .convert import ConversionError


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def _metadata_pairs(items):
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConversionError(f"--metadata expects KEY=VALUE, got '{item}'")
        out[key] = value
    return out


def _cmd_convert(args):
    from .convert import convert
    log = (lambda msg: None) if args.quiet else (lambda msg: print(msg, flush=True))
    convert(args.src, args.output, arch=args.arch, num_heads=args.num_heads,
            embedding_size=args.embedding_size, img_size=args.img_size,
            metadata=_metadata_pairs(args.metadata), log=log)
    return 0


def _cmd_export(args):
    from .convert import export
    names = export(args.model, args.output)
    if not args.quiet:
        print(f"wrote {len(names)} tensors to {args.output}")
    return 0


def _cmd_info(args):
    from ._api import Model, version
    with Model(args.model, verify_checksums=not args.no_verify) as m:
        info = {
            "file": args.model,
            "library": version(),
            "config": m.config.to_dict(),
            "preprocess": m.preprocess.to_dict(),
            "metadata": m.metadata,
            "tensors": {n: list(s) for n, s in m.tensor_info().items()},
        }
    count = sum(_prod(s) for s in info["tensors"].values())
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    c = info["config"]
    print(f"file: {args.model}")
    print(f"arch: {c['arch']}  img {c['img_size']}  patch {c['patch_size']}  channels "
          f"{c['in_channels']}")
    print(f"embed_dim {c['embed_dim']}  depth {c['depth']}  heads {c['num_heads']}  mlp "
          f"{c['mlp_hidden_dim']}  embedding {c['embedding_size']}  drop_path "
          f"{c['drop_path_rate']}  mask_ratio {c['mask_ratio']}")
    p = info["preprocess"]
    print(f"preprocess: {p['input_width']}x{p['input_height']} {p['channel_order']} mean "
          f"{list(p['mean'])} std {list(p['std'])}")
    print(f"tensors: {len(info['tensors'])}, {count} parameters ({count * 4 / 2**20:.1f} MiB float32)")
    if args.tensors:
        for n, s in info["tensors"].items():
            print(f"  {n} {s}")
    print("metadata:" if info["metadata"] else "metadata: (none)")
    for k, v in info["metadata"].items():
        print(f"  {k} = {v}")
    return 0


def _cmd_export_onnx(args):
    from .onnx_export import OnnxDependencyError, OnnxExportError, export_onnx, verify_onnx
    prog = "transface export-onnx"
    batch = None
    if args.batch != "dynamic":
        try:
            batch = int(args.batch)
        except ValueError:
            batch = 0
        if batch < 1:
            sys.stderr.write(f"{prog}: error: --batch expects a positive integer or 'dynamic', got '{args.batch}'\n")
            return 2
    try:
        info = export_onnx(args.model, args.output, batch=batch, opset=args.opset, input_type=args.input_type,
                           external_data=True if args.external_data else None)
        if not args.quiet:
            ops = ", ".join(f"{k} {v}" for k, v in sorted(info["ops"].items()))
            print(f"wrote {args.output}: opset {info['opset']}, {info['nodes']} nodes, "
                  f"{info['parameters']} parameters ({info['bytes'] / 2**20:.1f} MiB"
                  f"{', weights in ' + args.output + '.data' if info['external_data'] else ''})")
            print(f"input {info['input'][0]} {info['input'][1]} {info['input'][2]} (NHWC RGB), output "
                  f"{info['output'][0]} float32 {info['output'][2]} (not normalised)")
            print(f"ops: {ops}")
        if args.verify:
            r = verify_onnx(args.model, args.output, count=batch or args.verify)
            print(f"verify ({r['images']} random images, onnxruntime vs libtransface): max |diff| "
                  f"{r['max_abs_diff']:.3g} = {r['relative']:.3g} of max |embedding|, min cosine "
                  f"{r['min_cosine']:.9f}")
    except (OnnxDependencyError, OnnxExportError) as e:
        sys.stderr.write(f"{prog}: error: {_one_line(e)}\n")
        return 2 if isinstance(e, OnnxExportError) else 1
    return 0


def _prod(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def build_parser():
    p = _Parser(prog="python3 -m transface", description="libtransface model files")
    p.add_argument("--version", action="version", version=f"transface-python {__version__}")
    sub = p.add_subparsers(dest="command", parser_class=_Parser, required=True)

    c = sub.add_parser("convert", help="official state_dict (.npz / .pt) -> model file (.tfm)")
    c.add_argument("src", help=".npz of official state_dict arrays, or a torch.save .pt file "
                               "(state_dict or training checkpoint with state_dict_backbone)")
    c.add_argument("-o", "--output", required=True, help="model file to write (.tfm)")
    c.add_argument("--arch", help="official preset name (sets num_heads and the training "
                                  "fields; the shapes must match)")
    c.add_argument("--num-heads", type=int, help="attention heads (default 8: every official model)")
    c.add_argument("--embedding-size", type=int,
                   help="ignored: inferred from feature.2.weight (an error if it disagrees)")
    c.add_argument("--img-size", type=int, help="input size (default 112 when it fits the grid)")
    c.add_argument("--metadata", action="append", metavar="KEY=VALUE",
                   help="extra metadata entry (repeatable)")
    c.add_argument("--no-torch", action="store_true",
                   help="ignored (kept for old scripts): .pt files are always read without torch")
    c.add_argument("-q", "--quiet", action="store_true")
    c.set_defaults(func=_cmd_convert)

    e = sub.add_parser("export", help="model file -> .npz of official names (float32)")
    e.add_argument("model")
    e.add_argument("-o", "--output", required=True)
    e.add_argument("-q", "--quiet", action="store_true")
    e.set_defaults(func=_cmd_export)

    i = sub.add_parser("info", help="describe a model file")
    i.add_argument("model")
    i.add_argument("--tensors", action="store_true", help="list every tensor")
    i.add_argument("--json", action="store_true")
    i.add_argument("--no-verify", action="store_true", help="skip checksum verification")
    i.set_defaults(func=_cmd_info)

    o = sub.add_parser("export-onnx", help="model file -> ONNX graph (uint8 NHWC RGB faces -> raw embedding)")
    o.add_argument("model")
    o.add_argument("-o", "--output", required=True, help="ONNX file to write")
    o.add_argument("--batch", default="dynamic", help="batch size N, or 'dynamic' (default)")
    o.add_argument("--opset", type=int, default=17, help="ONNX opset (>= 17; default 17)")
    o.add_argument("--input-type", choices=("uint8", "float32"), default="uint8",
                   help="uint8 pixels (default, as Model.embed) or float32 pixel values 0..255")
    o.add_argument("--external-data", action="store_true",
                   help="weights in OUTPUT.data beside the graph (automatic above 2 GiB)")
    o.add_argument("--verify", type=int, nargs="?", const=4, default=0, metavar="N",
                   help="then compare onnxruntime with libtransface on N random images (default 4)")
    o.add_argument("-q", "--quiet", action="store_true")
    o.set_defaults(func=_cmd_export_onnx)
    return p


def _one_line(msg):
    return " ".join(str(msg).split())


def main(argv=None):
    args = build_parser().parse_args(argv)
    prog = f"transface {args.command}"
    try:
        return args.func(args)
    except ConversionError as e:
        sys.stderr.write(f"{prog}: error: {_one_line(e)}\n")
        return 2
    except (Error, OSError) as e:
        sys.stderr.write(f"{prog}: error: {_one_line(e)}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write(f"{prog}: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
