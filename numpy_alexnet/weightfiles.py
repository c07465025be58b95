"""Weight files read safely: a dict of arrays and a label for messages, from any of them.

``.npy``: a plain array, or the pickled dict of ``bvlc_alexnet.npy`` read with a
restricted unpickler that builds dicts, lists and NumPy arrays and nothing else
(a pickle can run any code it names); ``.npz``: a dict of arrays; ``.pth`` /
``.pt`` (or any file ``torch.save`` wrote): a PyTorch state dict, which needs
PyTorch (``pip install torch``), imported only then.  What the arrays mean
(their layout) is ``pretrained.py``'s business.
"""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import numpy as np

# What pretrained.py understands, for messages about a file that is none of them.
LAYOUTS_HELP = ("'bvlc' (a .npy dict {'conv1': [W (KH, KW, C/G, F), b], ...}), "
                "'torchvision' (a state dict {'features.0.weight': (F, C, KH, KW), ...}), "
                "'numpy-alexnet' ({'conv1.W': ..., 'conv1.b': ...}, Sequential.state_dict())")


class WeightsError(ValueError):
    """A weight file that does not fit the network; the message names the file, layer and shapes."""


class LabelledWeights(dict):
    """A weights dict that remembers the name of the file it came from (for messages)."""

    def __init__(self, weights: dict, label: str):
        super().__init__(weights)
        self.label = label


class _WeightsUnpickler(pickle.Unpickler):
    """Unpickle dicts, lists and tuples of NumPy arrays, and nothing else.

    A pickle can run any code it names; a weight file needs only these.
    """
    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
        ("collections", "OrderedDict"),
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weight file")


def _read_npy(path: Path):
    """A .npy file: a plain array, or the pickled object (a dict) inside a 0-d object array."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        readers = {(1, 0): np.lib.format.read_array_header_1_0,
                   (2, 0): np.lib.format.read_array_header_2_0}
        if version not in readers:
            return np.load(path, allow_pickle=False)          # a plain array (or a clear error)
        shape, _, dtype = readers[version](f)
        if dtype.hasobject:
            try:
                # Python 2 pickles (the released file) need latin1 for the array bytes.
                obj = _WeightsUnpickler(f, encoding="latin1").load()
            except pickle.UnpicklingError as err:
                raise WeightsError(
                    f"{path}: {err}; only dicts of arrays are read.  If you trust the "
                    "file, np.load(path, allow_pickle=True).item() and pass the dict") from err
            return obj.item() if isinstance(obj, np.ndarray) and obj.shape == () else obj
    return np.load(path, allow_pickle=False)


def _read_torch(path: Path) -> dict:
    try:
        import torch
    except ImportError as err:
        raise ImportError(f"{path}: reading a .pth needs PyTorch: pip install torch "
                          "(or save the state dict as .npz: np.savez(path, **{k: v.numpy() ...}))"
                          ) from err
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    return obj


def _is_torch_zip(path: Path) -> bool:
    """torch.save's zip format holds '<archive>/data.pkl'; an .npz holds only '.npy' members."""
    with zipfile.ZipFile(path) as z:
        return any(name.endswith("data.pkl") for name in z.namelist())


def read_weights(source) -> tuple[dict, str]:
    """(a dict of weights as the file holds them, a label for messages) from a path or dict.

    ``.npy``: a pickled dict (the bvlc layout); ``.npz``: a dict of arrays;
    ``.pth``/``.pt`` (or any file ``torch.save`` wrote): a PyTorch state dict.
    """
    if isinstance(source, LabelledWeights):
        return source, source.label
    if isinstance(source, dict):
        return source, "weights dict"
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weight file")
    with open(path, "rb") as f:
        head = f.read(6)
    try:
        if head == b"\x93NUMPY":
            obj = _read_npy(path)
        elif head[:2] == b"PK":                                   # a zip: .npz or torch.save
            if _is_torch_zip(path):
                obj = _read_torch(path)
            else:
                with np.load(path, allow_pickle=False) as z:
                    obj = {k: z[k] for k in z.files}
        elif head[:1] == b"\x80" or path.suffix in (".pth", ".pt"):   # legacy torch pickle
            obj = _read_torch(path)
        else:
            raise WeightsError(f"{path}: not a .npy, .npz or PyTorch file; "
                               f"understood layouts: {LAYOUTS_HELP}")
    except (WeightsError, ImportError):
        raise
    except (OSError, ValueError, EOFError, RuntimeError, zipfile.BadZipFile,
            pickle.UnpicklingError) as err:                       # truncated, corrupt
        raise WeightsError(f"{path}: not a readable weights file (truncated or corrupt: "
                           f"{type(err).__name__})") from err
    if not isinstance(obj, dict):
        raise WeightsError(f"{path}: holds a {type(obj).__name__} "
                           f"{getattr(obj, 'shape', '')}, not a dict of weights; "
                           f"understood layouts: {LAYOUTS_HELP}")
    return obj, str(path)
