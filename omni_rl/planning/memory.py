"""The memory model: bytes per GPU for a trainer rank and for a generation engine shard.

Parameters, gradients and optimizer states are exact element counts of the model built on the meta device
(FSDP2 shards every tensor on dim 0 in ``ceil(d0 / ranks)`` padded rows). Activations use per-token
formulas per decoder-layer type, derived from the tensors autograd saves in transformers' NemotronH code
and checked against that measurement on CPU at real width (``tests/test_planning.py``):

- every layer: the fp32 residual and RMSNorm (2 x 4H bytes + 4) and the normed input (c H);
- attention: q and the attention output (2 c heads head_dim), k and v (2 c kv_heads head_dim), the
  softmax statistics (4 heads);
- MoE: the router's fp32 input (4H) and scores (~5E), per routed token k x (input cH, up and activation
  2 c F, output cH, weight 4), the shared expert (input cH, 2 c F_shared);
- Mamba-2: with the fused CUDA kernels (mamba_ssm; the GPU default) the in_proj output, the conv output,
  the gated-norm input and the out_proj input; the pure-torch fallback (CPU, or GPU without mamba_ssm)
  also keeps chunk-quadratic terms, calibrated on CPU at real width: ``TORCH_MAMBA_CHUNK_TERMS`` x
  4 x heads x chunk_size bytes per token. The fused figure is not measured here (no GPU): see
  docs/scale.md.

With gradient checkpointing each layer keeps only its input (c H per token) and one layer's activations
live at a time during the recompute. c is the compute dtype's size.
"""

from __future__ import annotations

from dataclasses import dataclass

from omni_rl.planning.shapes import ModelShape

GiB = float(1 << 30)
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2, "fp8": 1}
TORCH_MAMBA_CHUNK_TERMS = 13.7  # calibrated: tests/test_planning.py re-measures it
ADAMW_STATES = 2  # exp_avg, exp_avg_sq


@dataclass(frozen=True)
class Row:
    what: str
    bytes: float
    note: str = ""

    @property
    def gib(self) -> float:
        return self.bytes / GiB


@dataclass(frozen=True)
class TrainerSettings:
    ranks: int  # FSDP2 shards every parameter over this many ranks (1: a full copy)
    param_dtype: str  # master weights
    optimizer_dtype: str  # AdamW moments
    compute_dtype: str  # FSDP2 all-gathers parameters in this dtype for forward and backward
    sharded: bool  # FSDP2 (GPU); False: plain replicas with gradient all-reduce (CPU)
    micro_batch_tokens: int
    gradient_checkpointing: bool
    logprob_chunk_size: int
    fused_mamba: bool = True
    offload: bool = False  # FSDP2 CPUOffloadPolicy: sharded params, grads, optimizer in host memory
    reduce_float32: bool = True  # FSDP2 reduce-scatters float32 copies of the unsharded gradients


def layer_activation_bytes(shape: ModelShape, kind: str, compute: int, fused_mamba: bool) -> float:
    """Bytes autograd keeps per token for one decoder layer of type ``kind`` (module docstring)."""
    t, c = shape.text, compute
    h = t["hidden_size"]
    common = 8 * h + 4 + c * h
    if kind == "full_attention":
        heads, kv, hd = t["num_attention_heads"], t["num_key_value_heads"], t["head_dim"]
        return common + 2 * c * heads * hd + 2 * c * kv * hd + 4 * heads
    if kind == "moe":
        k, f, e = t["num_experts_per_tok"], t["moe_intermediate_size"], t["n_routed_experts"]
        shared = t["moe_shared_expert_intermediate_size"] or 0
        routed = k * (2 * c * h + 2 * c * f + 4 + 40)  # + indices and weights of the routed copies
        return 8 * h + 4 + 4 * h + 5 * e + routed + (c * h + 2 * c * shared if shared else 0)
    if kind == "mlp":
        f = t["intermediate_size"]
        return common + 2 * c * f + c * h
    if kind == "linear_attention":
        heads, hd, n, g = t["mamba_num_heads"], t["mamba_head_dim"], t["ssm_state_size"], t["n_groups"]
        inner = heads * hd
        conv_dim = inner + 2 * g * n
        fused = common + c * (2 * inner + 2 * g * n + heads) + c * conv_dim + 4 * inner + c * inner
        if fused_mamba:
            return fused
        return fused + TORCH_MAMBA_CHUNK_TERMS * 4 * heads * t.get("chunk_size", 128)
    raise ValueError(f"unknown decoder layer type {kind!r}")


def activation_rows(shape: ModelShape, s: TrainerSettings) -> list[Row]:
    c = DTYPE_BYTES[s.compute_dtype]
    tokens, h, vocab = s.micro_batch_tokens, shape.text["hidden_size"], shape.text["vocab_size"]
    per_layer = [layer_activation_bytes(shape, k, c, s.fused_mamba) for k in shape.layer_types]
    head = 8 * h + 4 + c * h  # final norm and the LM head's input
    checkpointed = tokens * (len(per_layer) * c * h + max(per_layer))
    full = tokens * sum(per_layer)
    if s.gradient_checkpointing:
        body = checkpointed
        note = f"checkpointed: {len(per_layer)} layer inputs + one layer recomputed; without: {full / GiB:.2f} GiB"
    else:
        body = full
        note = f"{len(per_layer)} layers, no checkpointing; with it: {checkpointed / GiB:.2f} GiB"
    logits = s.logprob_chunk_size * vocab * (c + 8)  # a chunk's logits, fp32 log-softmax and its grad
    return [
        Row(f"activations ({tokens} tokens/micro-batch)", body + tokens * head, note),
        Row("logits (one log-prob chunk)", logits, f"{s.logprob_chunk_size} rows x {vocab} vocab"),
    ]


def trainer_rows(
    shape: ModelShape, s: TrainerSettings, rank: int = 0
) -> tuple[list[Row], list[Row], list[Row]]:
    """(resident: on the GPU between steps, transient: on the GPU during a step, host: in host memory
    with ``offload``) for trainer rank ``rank`` (rank 0 holds the most)."""
    ranks = s.ranks if s.sharded else 1
    p, o, c = DTYPE_BYTES[s.param_dtype], DTYPE_BYTES[s.optimizer_dtype], DTYPE_BYTES[s.compute_dtype]
    every = sum(x.shard_numel(ranks, rank) for x in shape.params)
    trainable = sum(x.shard_numel(ranks, rank) for x in shape.params if x.trainable)
    moments = sum(x.shard_numel(ranks, rank, padded=False) for x in shape.params if x.trainable)
    n_trainable = sum(1 for x in shape.params if x.trainable)
    shard = f"sharded 1/{ranks}" if ranks > 1 else "full copy"
    resident = [
        Row(f"parameters ({s.param_dtype})", every * p, shard),
        Row(
            f"optimizer states (AdamW, {ADAMW_STATES} x {s.optimizer_dtype})",
            moments * ADAMW_STATES * o + 4 * n_trainable,
            f"trainable only, {shard}",
        ),
    ]
    grads = Row(f"gradients ({s.param_dtype})", trainable * p, f"trainable only, {shard}")
    host: list[Row] = []
    if s.offload and s.sharded:
        host, resident = [*resident, grads], []
        transient = []
    else:
        transient = [grads]
    if s.sharded:
        units = shape.unit_numels()
        root = units.pop("root", 0)
        largest = max(units.values(), default=0)
        trainable_units = shape.unit_numels(trainable=True)
        trainable_root = trainable_units.pop("root", 0)
        largest_trainable = max(trainable_units.values(), default=0)
        transient.append(Row(f"gathered parameters ({s.compute_dtype})", (root + 2 * largest) * c,
                             "root unit (encoders, embeddings, LM head) + 2 decoder layers (prefetch)"))  # fmt: skip
        extra, how = (4, f"{s.compute_dtype} + a float32 copy") if s.reduce_float32 else (0, s.compute_dtype)
        transient.append(Row("unsharded gradients before reduce-scatter", (trainable_root + largest_trainable) * (c + extra),
                             f"root + one layer, {how}"))  # fmt: skip
    transient.extend(activation_rows(shape, s))
    return resident, transient, host


@dataclass(frozen=True)
class EngineSettings:
    tp: int  # tensor-parallel size: GPUs per engine
    dtype: str  # serving dtype of the weights
    kv_dtype: str
    state_dtype: str  # Mamba conv / SSM state
    max_num_seqs: int
    max_model_len: int
    reserve_gib: float  # CUDA context, graphs, sampler and activation workspace


def engine_rows(shape: ModelShape, s: EngineSettings) -> list[Row]:
    """One engine shard (one GPU) holding weights, KV cache and Mamba state for every sequence."""
    t, tp = shape.text, s.tp
    w = DTYPE_BYTES[s.dtype]
    llm = shape.numel(groups=("language", "router"))
    replicated = shape.base_numel() - llm
    seqs, length = s.max_num_seqs, s.max_model_len
    attention = shape.layer_types.count("full_attention")
    kv_heads = max(1, t["num_key_value_heads"] // tp)  # vLLM replicates KV heads when tp > kv heads
    kv = attention * 2 * kv_heads * t["head_dim"] * DTYPE_BYTES[s.kv_dtype] * length * seqs
    mamba = shape.layer_types.count("linear_attention")
    rows = [
        Row(
            f"weights ({s.dtype})",
            (llm / tp + replicated) * w,
            f"LLM 1/{tp} per TP shard, encoders and projectors whole" if tp > 1 else "whole model",
        ),
        Row(f"KV cache ({s.kv_dtype})", kv, f"{attention} attention layers, {seqs} seqs x {length} tokens"),
    ]
    if mamba:
        heads, hd, n, g = t["mamba_num_heads"], t["mamba_head_dim"], t["ssm_state_size"], t["n_groups"]
        conv = (heads * hd + 2 * g * n) // tp * (t["conv_kernel"] - 1)
        ssm = heads // tp * hd * n
        state = mamba * (conv + ssm) * DTYPE_BYTES[s.state_dtype] * seqs
        rows.append(Row(f"Mamba state ({s.state_dtype})", state, f"{mamba} Mamba layers, {seqs} seqs"))
    rows.append(Row("engine reserve", s.reserve_gib * GiB, "plan.engine_reserve_gib"))
    return rows


def total(rows: list[Row]) -> float:
    return sum(r.bytes for r in rows)
