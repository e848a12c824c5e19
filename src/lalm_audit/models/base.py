"""The adapter contract every LALM family implements, and the shared transformers plumbing.

An adapter wraps one loaded model and its processor. It knows the family's
chat template, where the audio placeholder tokens sit after expansion, the
longest clip the model takes (its *audio window*), how to generate, and how
to run one teacher-forced pass that returns hidden states at the positions
the statistics need. Everything is batched.

Slice boundaries come from token offsets of the *full* sequence (chat
template + expanded audio placeholders + response), never from tokenizing a
piece alone:

- ``audio``: the positions whose input id is an audio placeholder (after the
  processor expanded it to one token per audio frame);
- ``prompt``: the tokens whose character span overlaps the prompt text inside
  the rendered chat template;
- ``response``: the tokens whose character span overlaps the response text,
  which is appended right after the generation prompt.

Character spans are mapped from the rendered text to the expanded text with
the processor's own ``text_replacement_offsets``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from lalm_audit.audio import load_item
from lalm_audit.errors import AudioError

log = logging.getLogger(__name__)

SLICES = ("audio", "prompt", "response")

# A string that no chat template alters and no prompt contains: rendered in
# place of the prompt to find where the prompt text sits in the template.
_SENTINEL = "\u2063LALMAUDITPROMPT\u2063"


@dataclass(frozen=True)
class ClipDecision:
    """What the long-clip policy did to one clip."""

    samples: np.ndarray | None  # None when rejected
    truncated: bool
    rejected: bool
    reason: str = ""


def apply_clip_policy(
    samples: np.ndarray, sample_rate: int, window_s: float, policy: str, item_id: str = "?"
) -> ClipDecision:
    """Fit a clip to a model's audio window: ``truncate`` (recorded, with a warning) or ``reject``.

    Processors truncate long clips silently; this runs first, so a clip is
    never cut without a record.
    """
    dur = samples.shape[0] / sample_rate
    limit = round(window_s * sample_rate)
    if samples.shape[0] <= limit:
        return ClipDecision(samples, False, False)
    if policy == "reject":
        return ClipDecision(
            None,
            False,
            True,
            f"clip is {dur:.2f}s, longer than the model's {window_s:g}s audio window "
            "(long_clip_policy=reject); set the model's long_clip_policy to 'truncate' to score "
            "its first seconds, or shorten the clip",
        )
    log.warning(
        "item %s: clip is %.2fs, longer than the model's %gs audio window; scoring its first %gs "
        "(long_clip_policy=truncate, recorded as audio_window_truncated)",
        item_id,
        dur,
        window_s,
        window_s,
    )
    return ClipDecision(samples[:limit], True, False)


@dataclass
class TeacherForcedBatch:
    """One encoded batch of audio + prompt + response, with the slice positions of every row.

    ``slices[b][name]`` are indices into row ``b`` of ``input_ids`` of the
    tokens that belong to the slice (for ``audio``: the expanded placeholders).
    """

    inputs: dict[str, Any]
    input_ids: torch.Tensor
    slices: list[dict[str, np.ndarray]] = field(default_factory=list)


class _HiddenCapture:
    """Forward pre-hook on the output head: keep the hidden states, let the head see one position.

    The statistics need the logits of chosen positions only; computing them
    from the captured hidden states in chunks bounds memory (a 150k
    vocabulary times a long sequence in fp32 is gigabytes) and skips positions
    no slice uses.
    """

    def __init__(self) -> None:
        self.hidden: torch.Tensor | None = None

    def __call__(self, module: torch.nn.Module, args: tuple) -> tuple:
        h = args[0]
        self.hidden = h
        return (h[..., :1, :], *args[1:])


class LALMAdapter:
    """Base adapter: transformers processors that expand an audio placeholder token in text.

    Subclasses set the class attributes and override what differs
    (:meth:`audio_window_s`, :meth:`audio_placeholder_ids`, :meth:`postprocess_logits`, ...).
    """

    #: registry key, e.g. ``qwen2_audio``
    family: ClassVar[str]
    #: the transformers model class loaded by ``from_pretrained``
    model_class: ClassVar[str]
    #: the transformers processor class (``AutoProcessor`` picks it from the checkpoint)
    processor_class: ClassVar[str] = "AutoProcessor"
    #: placeholder written in the user turn when the processor ships no chat template
    default_audio_placeholder: ClassVar[str] = "<|AUDIO|>"
    #: the prompt is a Jinja chat template rendered to text (False: the tokenizer builds
    #: the token sequence itself, e.g. mistral-common; such adapters override encoding)
    uses_text_chat_template: ClassVar[bool] = True
    #: the processor cuts audio beyond :meth:`audio_window_s` (False: it takes any length and
    #: the window is the model's context, e.g. Voxtral)
    processor_cuts_audio: ClassVar[bool] = True

    def __init__(self, model: Any, processor: Any, *, device: str | torch.device = "cpu"):
        self.model = model
        self.processor = processor
        self.device = torch.device(device)
        self.tokenizer = processor.tokenizer
        if self.uses_text_chat_template and getattr(processor, "chat_template", None) is None:
            from lalm_audit.models.tokenizer import chatml_template

            processor.chat_template = chatml_template(self.default_audio_placeholder)

    @classmethod
    def load_processor(cls, source: str, **kwargs: Any) -> Any:
        """Load the family's processor from a hub id or folder (``kwargs``: revision, local_files_only, ...).

        Families whose released processor cannot be built here override this
        (e.g. to leave out image and video sub-processors).
        """
        import transformers

        return getattr(transformers, cls.processor_class).from_pretrained(source, **kwargs)

    # ------------------------------------------------------------------ family facts

    @property
    def sampling_rate(self) -> int:
        return int(self.feature_extractor.sampling_rate)

    @property
    def feature_extractor(self) -> Any:
        return getattr(self.processor, "feature_extractor", None) or self.processor.audio_processor

    def audio_window_s(self) -> float:
        """Longest clip (seconds) the model sees whole; longer clips are cut by the processor."""
        fe = self.feature_extractor
        return float(fe.n_samples / fe.sampling_rate)

    def audio_placeholder_ids(self) -> set[int]:
        """Input ids that stand for audio frames after expansion (the ``audio`` slice)."""
        return {int(self.processor.audio_token_id)}

    def stop_token_ids(self) -> list[int]:
        """Tokens that end a generated response (end of turn / end of text)."""
        ids: list[int] = []
        gen_eos = getattr(self.model.generation_config, "eos_token_id", None)
        for x in [gen_eos, self.tokenizer.eos_token_id]:
            if x is None:
                continue
            ids.extend([x] if isinstance(x, int) else list(x))
        for t in ("<|im_end|>", "<|endoftext|>", "<end_of_turn>", "<|end|>", "</s>"):
            tid = self.tokenizer.convert_tokens_to_ids(t)
            if isinstance(tid, int) and tid != self.tokenizer.unk_token_id and tid >= 0:
                ids.append(tid)
        return sorted(set(ids))

    def postprocess_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """What the model does to the head's output before returning logits (e.g. soft-capping)."""
        return logits

    def output_head(self) -> torch.nn.Module:
        return self.model.get_output_embeddings()

    # ------------------------------------------------------------------ prompt

    def conversation(self, prompt: str) -> list[dict[str, Any]]:
        return [
            {
                "role": "user",
                "content": [{"type": "audio"}, {"type": "text", "text": prompt}],
            }
        ]

    def render_prompt(self, prompt: str) -> tuple[str, tuple[int, int]]:
        """The chat-templated text up to the assistant turn, and the prompt's character span in it."""
        rendered = self.processor.apply_chat_template(
            self.conversation(_SENTINEL), add_generation_prompt=True, tokenize=False
        )
        if isinstance(rendered, list):
            rendered = rendered[0]
        if rendered.count(_SENTINEL) != 1:
            raise ValueError(
                f"{self.family}: the chat template must place the prompt exactly once "
                f"(found {rendered.count(_SENTINEL)} times)"
            )
        start = rendered.index(_SENTINEL)
        text = rendered.replace(_SENTINEL, prompt)
        return text, (start, start + len(prompt))

    # ------------------------------------------------------------------ processing

    def processor_kwargs(self) -> dict[str, Any]:
        """Extra keyword arguments for the processor call (family-specific)."""
        return {}

    def process(
        self, texts: list[str], wavs: Sequence[np.ndarray], *, padding_side: str, offsets: bool
    ) -> dict[str, Any]:
        # padding is a text setting only: passed as a common kwarg, some processors
        # (Audio Flamingo) would also pad the audio features to the longest clip.
        text_kw: dict[str, Any] = {"padding": True, "padding_side": padding_side}
        if offsets:
            text_kw["return_offsets_mapping"] = True
        kw: dict[str, Any] = {
            "text": list(texts),
            "audio": [np.asarray(w, dtype=np.float32) for w in wavs],
            "return_tensors": "pt",
            "text_kwargs": text_kw,
            "audio_kwargs": {"sampling_rate": self.sampling_rate},
            **self.processor_kwargs(),
        }
        if offsets:
            kw["return_text_replacement_offsets"] = True
        return dict(self.processor(**kw))

    def to_device(self, inputs: dict[str, Any]) -> dict[str, Any]:
        dtype = self.model.dtype
        out = {}
        for k, v in inputs.items():
            if isinstance(v, torch.Tensor):
                v = v.to(self.device)
                if torch.is_floating_point(v):
                    v = v.to(dtype)
            out[k] = v
        return out

    # ------------------------------------------------------------------ stage 1

    @torch.inference_mode()
    def generate(
        self, wavs: Sequence[np.ndarray], prompt: str, max_new_tokens: int
    ) -> list[list[int]]:
        """Greedy responses (token ids, end-of-turn excluded) to each clip + ``prompt``; one batch."""
        inputs = self.to_device(self.generation_inputs(wavs, prompt))
        n_in = inputs["input_ids"].shape[1]
        stops = self.stop_token_ids()
        pad = self.tokenizer.pad_token_id
        out = self.model.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            eos_token_id=stops,
            pad_token_id=pad if pad is not None else stops[0],
        )
        new = out[:, n_in:].cpu().numpy()
        responses = []
        for row in new:
            ids: list[int] = []
            for t in row.tolist():
                if t in stops:
                    break
                ids.append(int(t))
            responses.append(ids)
        return responses

    def generation_inputs(self, wavs: Sequence[np.ndarray], prompt: str) -> dict[str, Any]:
        """Model inputs for stage 1: each clip + ``prompt`` up to the assistant turn, left-padded."""
        text, _ = self.render_prompt(prompt)
        return self.process([text] * len(wavs), wavs, padding_side="left", offsets=False)

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    # ------------------------------------------------------------------ stage 2

    def encode_teacher_forced(
        self, wavs: Sequence[np.ndarray], prompt: str, responses: Sequence[str]
    ) -> TeacherForcedBatch:
        """Encode audio + prompt + response for one teacher-forced pass, with slice positions."""
        head, (p0, p1) = self.render_prompt(prompt)
        texts = [head + r for r in responses]
        enc = self.process(texts, wavs, padding_side="right", offsets=True)
        offsets = enc.pop("offset_mapping")
        repl = enc.pop("text_replacement_offsets")
        enc.pop("mm_token_type_ids", None)
        input_ids = enc["input_ids"]
        audio_ids = torch.tensor(sorted(self.audio_placeholder_ids()))
        slices = []
        for b, resp in enumerate(responses):
            shift = _expansion_shift(repl[b])
            r0 = len(head)
            spans = {
                "prompt": (shift(p0), shift(p1)),
                "response": (shift(r0), shift(r0 + len(resp))),
            }
            off = offsets[b].numpy()
            valid = enc["attention_mask"][b].numpy().astype(bool)
            nonempty = off[:, 1] > off[:, 0]
            row: dict[str, np.ndarray] = {
                "audio": np.flatnonzero(np.isin(input_ids[b].numpy(), audio_ids.numpy()) & valid)
            }
            for name, (s, e) in spans.items():
                hit = valid & nonempty & (off[:, 0] < e) & (off[:, 1] > s)
                row[name] = np.flatnonzero(hit)
            slices.append(row)
        return TeacherForcedBatch(inputs=enc, input_ids=input_ids, slices=slices)

    def encode_generated(
        self, wavs: Sequence[np.ndarray], prompt: str, response_ids: Sequence[Sequence[int]]
    ) -> TeacherForcedBatch:
        """Encode audio + prompt exactly as stage 1 did, followed by the generated ids themselves.

        Decoding generated ids and tokenizing the text again does not give the
        same ids back (a BPE merges ' op' + 'end' where the model wrote ' open'
        + 'd'), so a response the model generated is scored on its own ids:
        the ``response`` slice is those ids, after the stage-1 prompt's tokens.
        """
        head, (p0, p1) = self.render_prompt(prompt)
        enc = self.process([head] * len(wavs), wavs, padding_side="right", offsets=True)
        offsets = enc.pop("offset_mapping")
        repl = enc.pop("text_replacement_offsets")
        enc.pop("mm_token_type_ids", None)
        audio_ids = np.asarray(sorted(self.audio_placeholder_ids()))
        slices = []
        for b in range(len(wavs)):
            shift = _expansion_shift(repl[b])
            s, e = shift(p0), shift(p1)
            off = offsets[b].numpy()
            valid = enc["attention_mask"][b].numpy().astype(bool)
            hit = valid & (off[:, 1] > off[:, 0]) & (off[:, 0] < e) & (off[:, 1] > s)
            audio = np.isin(enc["input_ids"][b].numpy(), audio_ids) & valid
            slices.append({"audio": np.flatnonzero(audio), "prompt": np.flatnonzero(hit)})
        return append_response_ids(self, enc, slices, response_ids)

    @torch.inference_mode()
    def hidden_states(self, batch: TeacherForcedBatch) -> torch.Tensor:
        """Final hidden states [B, L, H] of one teacher-forced pass (the head runs on one position only)."""
        capture = _HiddenCapture()
        handle = self.output_head().register_forward_pre_hook(capture)
        try:
            self.model(**self.to_device(batch.inputs), use_cache=False)
        finally:
            handle.remove()
        if capture.hidden is None:
            raise RuntimeError(f"{self.family}: the output head was never called")
        return capture.hidden

    @torch.inference_mode()
    def logits_from_hidden(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits the model would return for these hidden states (fp32)."""
        return self.postprocess_logits(self.output_head()(hidden)).float()

    @torch.inference_mode()
    def full_logits(self, batch: TeacherForcedBatch) -> torch.Tensor:
        """The model's own logits for every position (the slow path; tests compare against it)."""
        return self.model(**self.to_device(batch.inputs), use_cache=False).logits.float()


def append_response_ids(
    adapter: LALMAdapter,
    inputs: dict[str, Any],
    slices: list[dict[str, np.ndarray]],
    response_ids: Sequence[Sequence[int]],
) -> TeacherForcedBatch:
    """Right-padded prompt encodings (``input_ids``, ``attention_mask``) + each row's response ids.

    The other inputs (audio features and their masks) are per clip, not per
    token, and pass through unchanged. A response holding one of the model's
    audio placeholder ids cannot be fed back (the model would take it for an
    audio frame), so it is an error naming the position.
    """
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    if len(response_ids) != ids.shape[0]:
        raise ValueError(f"{len(response_ids)} responses for a batch of {ids.shape[0]} clips")
    lengths = mask.sum(1).tolist()
    for b, n in enumerate(lengths):
        if not bool(mask[b, :n].all()):
            raise ValueError(f"{adapter.family}: prompt row {b} is not right-padded")
    placeholders = adapter.audio_placeholder_ids()
    resp = [np.asarray(r, dtype=np.int64).reshape(-1) for r in response_ids]
    for b, r in enumerate(resp):
        bad = np.flatnonzero(np.isin(r, sorted(placeholders)))
        if bad.size:
            raise ValueError(
                f"{adapter.family}: generated response {b} holds the audio placeholder id "
                f"{int(r[bad[0]])} at position {int(bad[0])}; it cannot be teacher-forced as "
                "text. Add it to the model's stop tokens (generation_config.eos_token_id)"
            )
    pad = adapter.tokenizer.pad_token_id
    pad = int(pad if pad is not None else adapter.stop_token_ids()[0])
    width = max(n + r.size for n, r in zip(lengths, resp, strict=True))
    new_ids = torch.full((ids.shape[0], width), pad, dtype=ids.dtype)
    new_mask = torch.zeros((ids.shape[0], width), dtype=mask.dtype)
    for b, (n, r) in enumerate(zip(lengths, resp, strict=True)):
        new_ids[b, :n] = ids[b, :n]
        new_ids[b, n : n + r.size] = torch.from_numpy(r).to(ids.dtype)
        new_mask[b, : n + r.size] = 1
        slices[b]["response"] = np.arange(n, n + r.size)
    out = {**inputs, "input_ids": new_ids, "attention_mask": new_mask}
    return TeacherForcedBatch(inputs=out, input_ids=new_ids, slices=slices)


def _expansion_shift(replacements: list[dict[str, Any]]) -> Any:
    """Map a character offset in the rendered text to the processor's expanded text."""
    spans = sorted(
        (r["span"][1], (r["new_span"][1] - r["new_span"][0]) - (r["span"][1] - r["span"][0]))
        for r in replacements
    )

    def shift(pos: int) -> int:
        return pos + sum(d for end, d in spans if end <= pos)

    return shift


# --------------------------------------------------------------------------- clips


@dataclass(frozen=True)
class Clip:
    item_id: str
    samples: np.ndarray
    truncated: bool


def load_clips(
    adapter: LALMAdapter, rows: pd.DataFrame, policy: str, *, dataset: str = ""
) -> tuple[list[Clip], list[dict[str, Any]]]:
    """Decode every row at the model's rate and fit it to the model's audio window.

    Returns the clips and the rejections (``REJECTED`` rows): undecodable
    audio, or a clip too long for the model under ``long_clip_policy=reject``.
    """
    sr, window = adapter.sampling_rate, adapter.audio_window_s()
    clips: list[Clip] = []
    rejected: list[dict[str, Any]] = []
    for row in rows.itertuples(index=False):
        src = str(getattr(row, "audio_path", None) or "<embedded bytes>")
        try:
            samples = load_item(row, target_sr=sr)
        except AudioError as exc:
            rejected.append(_rejection(dataset, row.item_id, src, exc.code, str(exc)))
            continue
        d = apply_clip_policy(samples, sr, window, policy, row.item_id)
        if d.rejected:
            rejected.append(_rejection(dataset, row.item_id, src, "too_long_for_model", d.reason))
            continue
        clips.append(Clip(row.item_id, d.samples, d.truncated))  # type: ignore[arg-type]
    return clips, rejected


def _rejection(dataset: str, item_id: str, source: str, code: str, reason: str) -> dict[str, Any]:
    return {
        "dataset": dataset,
        "item_id": item_id,
        "source": source,
        "reason_code": code,
        "reason": reason,
    }
