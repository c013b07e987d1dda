"""PyTorch eager Hugging Face generation, the server-side peer of the peers benchmark (bench/peers-torch.ts).

Loads a Hugging Face Llama folder (config.json + safetensors) with transformers' LlamaForCausalLM, eager
attention, float16 on CUDA or float32 on the CPU, then answers requests, one JSON object per line:

  stdin:  {"prompt": [ids...], "newTokens": n}
  stdout: {"promptTokens", "newTokens", "timeToFirstTokenMs", "prefillTokensPerSecond",
           "decodeTokensPerSecond", "ids"}  (ids: the greedy tokens generated)

The first stdout line is {"loadMs", "detail"}, or {"error"} when torch or transformers is missing or the
model does not load; at the end of stdin the last line is {"peakGpuBytes", "peakRssBytes"}. Anything else
(warnings, progress) goes to stderr. Greedy decoding, token by token through the KV cache, EOS ignored;
each token is read back to the host as it is produced, as the other engines stream them. Timings follow
the other engines: prefill tok/s = prompt / time to first token, decode tok/s = (new - 1) / the time
after the first token; CUDA is synchronised before every clock read.
"""

import argparse
import importlib.util
import inspect
import json
import os
import resource
import sys
import time

# Local files only: a folder that fails to load must not turn into a model hub download.
os.environ["HF_HUB_OFFLINE"] = "1"

# Keep stdout for the protocol alone: whatever else prints (Python or native code) goes to stderr.
PROTOCOL = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)
sys.stdout = sys.stderr


def reply(obj):
    PROTOCOL.write(json.dumps(obj) + "\n")


def import_peer():
    missing = [name for name in ("torch", "transformers") if importlib.util.find_spec(name) is None]
    if missing:
        reply({"error": f"{sys.executable} lacks the Python package(s) {', '.join(missing)}"})
        sys.exit(3)
    import torch
    import transformers

    return torch, transformers


def version_at_least(version, major, minor):
    parts = [int("".join(c for c in p if c.isdigit()) or 0) for p in version.split(".")[:2]]
    return tuple(parts) >= (major, minor)


def load(torch, transformers, folder, device):
    dtype = torch.float16 if device == "cuda" else torch.float32
    # transformers 4.56 renamed torch_dtype to dtype (the old name still works there, with a warning)
    dtype_arg = "dtype" if version_at_least(transformers.__version__, 4, 56) else "torch_dtype"
    model = transformers.LlamaForCausalLM.from_pretrained(
        folder, attn_implementation="eager", **{dtype_arg: dtype}
    )
    return model.to(device).eval()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="Hugging Face model folder")
    parser.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads on the CPU (0: torch's default)")
    args = parser.parse_args()

    torch, transformers = import_peer()
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu" and args.threads:
        torch.set_num_threads(args.threads)

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    t = time.perf_counter()
    try:
        model = load(torch, transformers, args.folder, device)
    except Exception as e:  # reported to the caller as the engine's failure
        reply({"error": f"loading {args.folder} failed: {type(e).__name__}: {e}"})
        sys.exit(4)
    sync()
    load_ms = (time.perf_counter() - t) * 1000
    where = (
        torch.cuda.get_device_name()
        if device == "cuda"
        else f"CPU, {torch.get_num_threads()} of {os.cpu_count()} threads"
    )
    dtype = "f16" if device == "cuda" else "f32"
    detail = f"PyTorch {torch.__version__} eager, transformers {transformers.__version__}, {where}, {dtype}"
    reply({"loadMs": load_ms, "detail": detail})

    # Only the last position's logits: transformers' generate() does the same (logits_to_keep, formerly
    # num_logits_to_keep); older versions compute them all.
    params = inspect.signature(model.forward).parameters
    keep = next(({k: 1} for k in ("logits_to_keep", "num_logits_to_keep") if k in params), {})

    def step(ids, cache):
        out = model(input_ids=ids, past_key_values=cache, use_cache=True, **keep)
        return out.logits[:, -1].argmax(-1, keepdim=True), out.past_key_values

    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        prompt, new = request["prompt"], request["newTokens"]
        with torch.inference_mode():
            ids = torch.tensor([prompt], dtype=torch.long, device=device)
            sync()
            t0 = time.perf_counter()
            token, cache = step(ids, None)
            generated = [token.item()]
            sync()
            t_first = time.perf_counter()
            for _ in range(new - 1):
                token, cache = step(token, cache)
                generated.append(token.item())
            sync()
            t_end = time.perf_counter()
        ttft = (t_first - t0) * 1000
        reply(
            {
                "promptTokens": len(prompt),
                "newTokens": new,
                "timeToFirstTokenMs": ttft,
                "prefillTokensPerSecond": len(prompt) * 1000 / ttft,
                "decodeTokensPerSecond": (new - 1) / max(t_end - t_first, 1e-6),
                "ids": generated,
            }
        )

    reply(
        {
            "peakGpuBytes": torch.cuda.max_memory_allocated() if device == "cuda" else None,
            "peakRssBytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        }
    )


if __name__ == "__main__":
    main()
