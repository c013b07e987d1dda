# The oracle of test/model/quant.test.ts: gguf-py's numpy (de)quantizers (gguf.quants, from llama.cpp's
# gguf-py) run over the files the test writes into DIR:
#   DIR/values.f32          -> DIR/Q8_0.quant, DIR/Q4_0.quant   (quantize)
#   DIR/<TYPE>.blocks       -> DIR/<TYPE>.dequant.f32          (dequantize, TYPE in F32 F16 BF16 Q8_0 Q4_0 Q4_K Q6_K)
import sys
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize, quantize

folder = Path(sys.argv[1])
values = np.fromfile(folder / "values.f32", dtype="<f4")
for name in ("Q8_0", "Q4_0"):
    quantize(values.reshape(-1, 32), T[name]).tofile(folder / f"{name}.quant")
for name in ("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q6_K"):
    path = folder / f"{name}.blocks"
    if path.exists():
        dequantize(np.fromfile(path, dtype=np.uint8), T[name]).astype("<f4").tofile(folder / f"{name}.dequant.f32")
