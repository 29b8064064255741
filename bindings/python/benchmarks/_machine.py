"""Facts about the machine and the libraries that the benchmark scripts print with their results."""

import ctypes
import os
import platform

import transface


def openblas_info():
    """OpenBLAS as libtransface loaded it: env settings, core name, config, threads."""
    info = {"OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
            "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE")}
    transface.library_path()                     # loads libtransface (and its OpenBLAS)
    path = None
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                name = line.split()[-1] if len(line.split()) >= 6 else ""
                if "openblas" in os.path.basename(name).lower() and "scipy_openblas" not in name \
                        and "numpy" not in name:
                    path = name
                    break
    except OSError:
        pass
    info["library"] = path
    if path:
        try:
            lib = ctypes.CDLL(path)
            for fn in ("openblas_get_corename", "openblas_get_config"):
                f = getattr(lib, fn)
                f.restype = ctypes.c_char_p
                info[fn[len("openblas_get_"):]] = f().decode(errors="replace")
            info["num_threads"] = int(lib.openblas_get_num_threads())
        except (OSError, AttributeError):
            pass
    return info


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def loadavg():
    try:
        return list(os.getloadavg())
    except OSError:
        return None
