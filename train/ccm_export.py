"""ccmem's adapter format (docs/adapters.md, version 1): adapter_config.json + adapter.safetensors (F32)."""

import json
import os

import torch
from safetensors.torch import load_file, save_file

from ccm_model import CcmModel


def base_model_info(config, name):
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return {
        "architecture": config.model_type,
        "hiddenSize": config.hidden_size,
        "numLayers": config.num_hidden_layers,
        "numHeads": config.num_attention_heads,
        "numKvHeads": getattr(config, "num_key_value_heads", None) or config.num_attention_heads,
        "headDim": head_dim,
        "vocabSize": config.vocab_size,
        "name": name,
    }


def adapter_tensors(model):
    """The format's tensors: layers.{i}.{t}.lora_A [r, in], lora_B [out, r], embeddings [m, hidden]."""
    out = {}
    for key, lora in model.loras.items():
        i, t = key.split("_")
        out[f"layers.{i}.{t}.lora_A"] = lora.lora_A.detach().float().cpu().contiguous()
        out[f"layers.{i}.{t}.lora_B"] = lora.lora_B.detach().float().cpu().contiguous()
    if model.embeddings.shape[0] > 0:
        out["embeddings"] = model.embeddings.detach().float().cpu().contiguous()
    return out


def write_adapter(out_dir, model, method, comp_tokens, mode, sink, separators, base_name):
    """Writes both files; `mode` is None for a sentinel adapter."""
    os.makedirs(out_dir, exist_ok=True)
    config = {
        "format": "ccmem-adapter",
        "version": 1,
        "method": method,
        "rank": model.rank,
        "alpha": model.alpha,
        "targets": list(model.targets),
        "compTokens": comp_tokens,
        **({"mode": mode} if mode else {}),
        "sink": sink,
        "separators": separators,
        "embeddingRows": int(model.embeddings.shape[0]),
        "baseModel": base_model_info(model.base.config, base_name),
    }
    save_file(adapter_tensors(model), os.path.join(out_dir, "adapter.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(out_dir, "adapter_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    return config


def read_adapter(adapter_dir):
    config = json.load(open(os.path.join(adapter_dir, "adapter_config.json"), encoding="utf-8"))
    if config.get("format") != "ccmem-adapter" or config.get("version") != 1:
        raise ValueError(f"{adapter_dir}: not a ccmem adapter (format ccmem-adapter, version 1)")
    return config, load_file(os.path.join(adapter_dir, "adapter.safetensors"))


def load_into(model, tensors):
    """Copies an adapter's tensors into a CcmModel of the same shape."""
    with torch.no_grad():
        for key, lora in model.loras.items():
            i, t = key.split("_")
            lora.lora_A.copy_(tensors[f"layers.{i}.{t}.lora_A"])
            lora.lora_B.copy_(tensors[f"layers.{i}.{t}.lora_B"])
        if model.embeddings.shape[0] > 0:
            model.embeddings.copy_(tensors["embeddings"])


def load_adapted(model_dir, adapter_dir, dtype=torch.float32, device="cpu", method="ccm"):
    """The base model with a ccm or sentinel adapter, for inference; returns (model, adapter config)."""
    config, tensors = read_adapter(adapter_dir)
    if config["method"] != method:
        raise ValueError(f"{adapter_dir}: method {config['method']!r}, expected {method}")
    model = CcmModel.load(
        model_dir,
        config["embeddingRows"],
        dtype=dtype,
        device=device,
        rank=config["rank"],
        alpha=config["alpha"],
        dropout=0.0,
        targets=config["targets"],
    )
    load_into(model, tensors)
    if dtype == torch.float64:  # the LoRA and rows too (they are kept f32 beside low-precision weights)
        model = model.double()
    return model.eval(), config
