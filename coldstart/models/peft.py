"""Parameter-efficient fine-tuning for the transformers TensorFlow BERT classes: adapters and LoRA.

No maintained TensorFlow library does this, so here it is, small enough to read in one sitting.
Both methods keep the pretrained encoder frozen and train a few new weights inserted into it; both
start as the identity, so at initialisation the model computes exactly what the frozen model does.

* :class:`Adapter` -- a Houlsby bottleneck (Houlsby et al., 2019): ``h + up(gelu(down(h)))`` on the
  output ``h`` of a sublayer's output projection, before the residual connection and LayerNorm.
  :func:`add_adapters` puts one after the attention output dense and one after the feed-forward
  output dense of every layer. ``up`` starts at zero.
* :class:`LoRADense` -- a low-rank update of a frozen ``Dense`` (Hu et al., 2021):
  ``base(x) + (alpha / rank) * x A B`` with ``A`` random and ``B`` zero. :func:`add_lora` wraps the
  query and value projections of every layer (``targets`` chooses others).

Then :func:`freeze_base` marks everything but the new weights (and optionally the encoder's LayerNorms)
non-trainable, :func:`trainable_report` counts, :func:`save_peft` / :func:`load_peft` write and read
*only* the new weights (safetensors + a json config, atomically), :func:`checkpoint_size` measures a
checkpoint on disk, and :class:`AdapterSet` keeps several named adapters for one frozen encoder and
switches between them at serving time.

Order matters: modify and freeze a model *before* ``compile`` (Keras builds its training step from
the trainable variables it sees then). Works on ``TFBertModel``, the ``TFBertFor...`` heads and any
Keras model holding one (e.g. :class:`coldstart.models.bert.TwoTower`).

(The step time and memory of the three ways to fine-tune are measured by
:func:`coldstart.tools.peft_memory.measure_methods`.)
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .._internal.io import atomic_dir
from .._internal.tf import import_tensorflow

tf = import_tensorflow()

WEIGHTS_FILE = "peft_weights.safetensors"
CONFIG_FILE = "peft_config.json"
FORMAT = "coldstart-peft"
FORMAT_VERSION = 1


class Adapter(tf.keras.layers.Layer):
    """A Houlsby adapter on the output of a frozen ``Dense``: ``h + up(gelu(down(h)))``, h = base(x).

    ``down`` projects the hidden size to ``size`` (the bottleneck), ``up`` back; ``up`` starts at
    zero, so at initialisation the layer returns ``base(x)`` exactly. Taught verbatim in notebook 06.
    """

    def __init__(self, base, size: int, **kwargs):
        super().__init__(**kwargs)
        self.base = base                       # the pretrained output projection (frozen)
        self.size = size
        width = base.units                     # the hidden size
        self.down = tf.keras.layers.Dense(size, activation="gelu", name="down")
        self.up = tf.keras.layers.Dense(width, kernel_initializer="zeros", name="up")
        for part, fan_in in ((self.down, width), (self.up, size)):   # create the weights now
            with tf.name_scope(f"{self.name}/{part.name}"):
                part.build((None, fan_in))

    def call(self, inputs):
        h = self.base(inputs)
        return h + self.up(self.down(h))       # the residual keeps the pretrained path intact


class LoRADense(tf.keras.layers.Layer):
    """A frozen ``Dense`` plus a trainable low-rank update: ``base(x) + (alpha / rank) * x A B``.

    ``A`` (d_in x rank) starts random, ``B`` (rank x d_out) at zero, so the update starts at zero.
    Only ``rank * (d_in + d_out)`` new weights instead of ``d_in * d_out``. Taught verbatim in
    notebook 06.
    """

    def __init__(self, base, rank: int, alpha: float, **kwargs):
        super().__init__(**kwargs)
        self.base = base                       # the pretrained projection (frozen)
        self.rank, self.alpha, self.scale = rank, alpha, alpha / rank
        d_in, d_out = base.kernel.shape
        # A: uniform(+-1/sqrt(d_in)), as loralib and PEFT initialise it
        init_a = tf.keras.initializers.VarianceScaling(1 / 3, mode="fan_in", distribution="uniform")
        with tf.name_scope(self.name):
            self.A = self.add_weight(name="A", shape=(d_in, rank), initializer=init_a)
            self.B = self.add_weight(name="B", shape=(rank, d_out), initializer="zeros")

    def call(self, inputs):
        update = tf.tensordot(tf.tensordot(inputs, self.A, axes=1), self.B, axes=1)
        return self.base(inputs) + self.scale * update


PEFT_LAYERS = (Adapter, LoRADense)

# where each LoRA target sits in a TFBertLayer: (path of the owning sublayer, attribute)
LORA_TARGETS = {
    "query": ("attention.self_attention", "query"),
    "key": ("attention.self_attention", "key"),
    "value": ("attention.self_attention", "value"),
    "attention_output": ("attention.dense_output", "dense"),
    "intermediate": ("intermediate", "dense"),
    "output": ("bert_output", "dense"),
}
# the two places of a Houlsby adapter: after the attention output dense and the feed-forward output dense
ADAPTER_SITES = {"attention": "attention.dense_output", "ffn": "bert_output"}


# -- finding the BERT layers ------------------------------------------------------------------------
def _layers(model) -> list:
    """The transformer layers (``TFBertLayer``) of the BERT encoder inside ``model``, in order."""
    from transformers.models.bert.modeling_tf_bert import TFBertEncoder

    candidates = [model] + list(getattr(model, "submodules", ()))
    encoders = [m for m in candidates if isinstance(m, TFBertEncoder)]
    if not encoders:
        raise TypeError(
            f"{type(model).__name__} holds no transformers TFBertEncoder: coldstart.models.peft works on "
            "TFBertModel / TFBertFor... models (e.g. all-MiniLM-L6-v2, bert-base-uncased) or Keras models holding one")
    if len(encoders) > 1:
        raise TypeError(f"{type(model).__name__} holds {len(encoders)} BERT encoders; pass the one to modify")
    return list(encoders[0].layer)


def _get(obj, dotted: str):
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def _model_config(model):
    for m in [model] + list(getattr(model, "submodules", ())):
        cfg = getattr(m, "config", None)
        if cfg is not None and hasattr(cfg, "hidden_size"):
            return cfg
    return None


def peft_layers(model) -> dict:
    """``{name: layer}`` of the adapter and LoRA layers in ``model``, in a fixed order.

    Names say where a layer sits: ``layer.0.adapter.attention``, ``layer.0.lora.query`` ...
    """
    out = {}
    for i, layer in enumerate(_layers(model)):
        for site, path in ADAPTER_SITES.items():
            found = _get(layer, path).dense
            if isinstance(found, Adapter):
                out[f"layer.{i}.adapter.{site}"] = found
        for target, (path, attr) in LORA_TARGETS.items():
            found = getattr(_get(layer, path), attr)
            while isinstance(found, Adapter):    # LoRA may sit inside an adapter's base projection
                found = found.base
            if isinstance(found, LoRADense):
                out[f"layer.{i}.lora.{target}"] = found
    return out


def new_weights(model) -> dict:
    """``{name: variable}`` of the weights the adapters and LoRA layers added (not their frozen bases)."""
    out = {}
    for name, layer in peft_layers(model).items():
        if isinstance(layer, Adapter):
            for part in (layer.down, layer.up):
                out[f"{name}.{part.name}.kernel"] = part.kernel
                out[f"{name}.{part.name}.bias"] = part.bias
        else:
            out[f"{name}.A"], out[f"{name}.B"] = layer.A, layer.B
    return out


def layernorm_weights(model) -> dict:
    """``{name: variable}`` of the LayerNorms inside the transformer layers (two per layer)."""
    out = {}
    for i, layer in enumerate(_layers(model)):
        for site, path in ADAPTER_SITES.items():
            norm = _get(layer, path).LayerNorm
            out[f"layer.{i}.layernorm.{site}.gamma"] = norm.gamma
            out[f"layer.{i}.layernorm.{site}.beta"] = norm.beta
    return out


# -- adding the layers ------------------------------------------------------------------------------
def add_adapters(model, size: int = 64):
    """Insert a Houlsby adapter of bottleneck ``size`` after the attention output dense and after the
    feed-forward output dense of every layer (before their residual + LayerNorm). Returns ``model``.

    The model's outputs are unchanged until the adapters train (``up`` starts at zero). Call before
    :func:`freeze_base` and before ``compile``.
    """
    size = int(size)
    if size < 1:
        raise ValueError(f"adapter size must be a positive integer, got {size}")
    layers = _layers(model)
    if any(isinstance(v, Adapter) for v in peft_layers(model).values()):
        raise ValueError("the model already has adapters (add them once; use AdapterSet for several)")
    for i, layer in enumerate(layers):
        for site, path in ADAPTER_SITES.items():
            owner = _get(layer, path)
            owner.dense = Adapter(owner.dense, size, name=f"layer_{i}_adapter_{site}")
    return model


def add_lora(model, rank: int = 8, alpha: float = 16.0, targets: Sequence[str] = ("query", "value")):
    """Replace the ``targets`` projections of every layer (default: attention query and value) by
    :class:`LoRADense` of ``rank`` and scale ``alpha / rank``. Returns ``model``.

    Valid targets: ``query, key, value, attention_output, intermediate, output``. The model's outputs
    are unchanged until LoRA trains (``B`` starts at zero).
    """
    rank = int(rank)
    if rank < 1:
        raise ValueError(f"LoRA rank must be a positive integer, got {rank}")
    if isinstance(targets, str):
        targets = (targets,)
    unknown = [t for t in targets if t not in LORA_TARGETS]
    if unknown or not targets:
        raise ValueError(f"unknown LoRA targets {unknown or list(targets)}: choose from {', '.join(LORA_TARGETS)}")
    layers = _layers(model)
    present = {name.rsplit(".", 1)[1] for name, layer in peft_layers(model).items() if isinstance(layer, LoRADense)}
    if present & set(targets):
        raise ValueError(f"the model already has LoRA on {sorted(present & set(targets))}")
    for i, layer in enumerate(layers):
        for target in dict.fromkeys(targets):
            path, attr = LORA_TARGETS[target]
            owner = _get(layer, path)
            base = getattr(owner, attr)
            if isinstance(base, Adapter):   # keep the adapter outermost: LoRA goes on its base projection
                owner, attr, base = base, "base", base.base
            if not base.built:
                raise ValueError("build the model before adding LoRA: call it once on an input (from_pretrained does)")
            setattr(owner, attr, LoRADense(base, rank, alpha, name=f"layer_{i}_lora_{target}"))
    return model


# -- freezing and counting --------------------------------------------------------------------------
def _keras_layers(model) -> list:
    layer_cls = tf.keras.layers.Layer
    return [m for m in [model] + list(model.submodules) if isinstance(m, layer_cls)]


def freeze_base(model, train_layernorm: bool = False):
    """Make only the new weights trainable (and, with ``train_layernorm``, the LayerNorms inside the
    transformer layers). Returns ``model``. Call before ``compile``.

    Keras decides trainability per layer, so every layer that owns pretrained weights is set
    ``trainable = False`` and the adapter / LoRA layers stay trainable.
    """
    if not peft_layers(model):
        raise ValueError("the model has no adapters or LoRA layers: call add_adapters or add_lora first")
    layers = _keras_layers(model)
    for layer in layers:
        layer.trainable = True
    norms = {id(_get(block, path).LayerNorm) for block in _layers(model) for path in ADAPTER_SITES.values()}
    new = {id(part) for p in peft_layers(model).values() for part in [p] + list(p.submodules)}
    new -= {id(_pretrained(p)) for p in peft_layers(model).values()}
    for layer in layers:
        # a layer owning weights itself (not only through sublayers) holds pretrained weights unless it is new
        owns = bool(layer._trainable_weights or layer._non_trainable_weights)
        if owns and id(layer) not in new:
            layer.trainable = train_layernorm and id(layer) in norms
    return model


def _pretrained(layer):
    """The pretrained Dense under an adapter / LoRA layer (through nested wrappers)."""
    while isinstance(layer, PEFT_LAYERS):
        layer = layer.base
    return layer


def _count(variables) -> int:
    seen, total = set(), 0
    for v in variables:
        if id(v) not in seen:
            seen.add(id(v))
            total += int(np.prod(v.shape))
    return total


def trainable_report(model) -> dict:
    """Parameter counts: ``total``, ``trainable``, ``new`` (added by adapters / LoRA) and
    ``trainable_percent`` (trainable / total x 100, the new weights included in the total)."""
    total, trainable = _count(model.weights), _count(model.trainable_weights)
    return {"total": total, "trainable": trainable, "new": _count(new_weights(model).values()),
            "trainable_percent": 100.0 * trainable / max(total, 1)}


# -- saving and loading -----------------------------------------------------------------------------
def _model_name(cfg) -> Optional[str]:
    """The base model's Hub id, or a local folder's name (a checkpoint carries no machine paths)."""
    name = getattr(cfg, "_name_or_path", None) or None
    if name and (os.path.isabs(name) or name.startswith(".") or Path(name).is_dir()):
        name = Path(name).name
    return name


def peft_config(model) -> dict:
    """What :func:`load_peft` needs to rebuild the layers: sizes, ranks, targets and the base model."""
    layers = peft_layers(model)
    if not layers:
        raise ValueError("the model has no adapters or LoRA layers: nothing to describe")
    adapters = [layer for layer in layers.values() if isinstance(layer, Adapter)]
    loras = {n.rsplit(".", 1)[1]: layer for n, layer in layers.items() if isinstance(layer, LoRADense)}
    cfg = _model_config(model)
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "base_model": _model_name(cfg),
        "hidden_size": getattr(cfg, "hidden_size", None),
        "num_hidden_layers": len(_layers(model)),
        "adapter": {"size": adapters[0].size} if adapters else None,
        "lora": ({"rank": next(iter(loras.values())).rank, "alpha": next(iter(loras.values())).alpha,
                  "targets": list(loras)} if loras else None),
    }


def _layernorm_trains(model) -> bool:
    """True when the transformer layers' LayerNorms train while their dense weights are frozen."""
    layer = _layers(model)[0]
    norm = layer.attention.dense_output.LayerNorm
    dense = layer.attention.self_attention.key
    return bool(norm.trainable and not dense.trainable)


def _write_folder(arrays: dict, config: dict, path) -> Path:
    """Write ``arrays`` (safetensors) and ``config`` (json) into folder ``path``: all or nothing."""
    from safetensors.numpy import save_file

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path} exists and is not a folder: a PEFT checkpoint is a folder")
    with atomic_dir(path, CONFIG_FILE, (WEIGHTS_FILE,)) as tmp:   # the old checkpoint stays until the new one is in
        save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in arrays.items()},
                  str(tmp / WEIGHTS_FILE), metadata={"format": FORMAT})
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=1))
    return path


def save_peft(model, path, include_layernorm: Optional[bool] = None) -> Path:
    """Save only the new weights to folder ``path``: ``peft_weights.safetensors`` + ``peft_config.json``.

    Written atomically (a reader sees the old checkpoint or the complete new one). LayerNorm weights
    are included when ``include_layernorm`` is True, or, by default, when they were trained
    (``freeze_base(train_layernorm=True)``). Returns the folder.
    """
    config = peft_config(model)
    arrays = {k: v.numpy() for k, v in new_weights(model).items()}
    if include_layernorm is None:
        include_layernorm = _layernorm_trains(model)
    if include_layernorm:
        arrays.update({k: v.numpy() for k, v in layernorm_weights(model).items()})
    config["layernorm"] = bool(include_layernorm)
    config["params"] = int(sum(a.size for a in arrays.values()))
    return _write_folder(arrays, config, path)


def read_peft(path) -> tuple[dict, dict]:
    """Read a PEFT checkpoint folder: ``(config, {name: array})``, with clear errors for a wrong folder."""
    from safetensors.numpy import load_file

    path = Path(path)
    cfg_file, w_file = path / CONFIG_FILE, path / WEIGHTS_FILE
    if not cfg_file.is_file() or not w_file.is_file():
        raise FileNotFoundError(
            f"{path} is not a PEFT checkpoint: it needs {CONFIG_FILE} and {WEIGHTS_FILE} (written by save_peft)")
    config = json.loads(cfg_file.read_text())
    if config.get("format") != FORMAT or config.get("version") != FORMAT_VERSION:
        raise ValueError(f"{cfg_file} is not a {FORMAT} v{FORMAT_VERSION} config")
    return config, load_file(str(w_file))


def _check_fit(shapes: dict, arrays: dict, where: str) -> None:
    """Raise ``ValueError`` unless ``arrays`` has exactly the names of ``shapes``, each of that shape."""
    missing = sorted(set(shapes) - set(arrays))
    unexpected = sorted(set(arrays) - set(shapes))
    if missing or unexpected:
        raise ValueError(f"{where} does not match the model: missing {missing[:4]}, unexpected {unexpected[:4]}")
    for name, shape in shapes.items():
        if tuple(shape) != tuple(arrays[name].shape):
            raise ValueError(f"{where}: {name} has shape {arrays[name].shape}, the model {tuple(shape)}")


def _assign(variables: dict, arrays: dict, where: str = "the checkpoint") -> None:
    _check_fit({name: var.shape for name, var in variables.items()}, arrays, where)
    for name, var in variables.items():
        var.assign(arrays[name])


def _planned_shapes(model, config: dict) -> dict:
    """``{name: shape}`` of the weights :func:`add_adapters` / :func:`add_lora` would add to ``model``
    for ``config`` (names as :func:`new_weights`), computed without changing the model."""
    out = {}
    for i, layer in enumerate(_layers(model)):
        if config.get("adapter"):
            size = int(config["adapter"]["size"])
            for site, path in ADAPTER_SITES.items():
                width = _get(layer, path).dense.units
                name = f"layer.{i}.adapter.{site}"
                out.update({f"{name}.down.kernel": (width, size), f"{name}.down.bias": (size,),
                            f"{name}.up.kernel": (size, width), f"{name}.up.bias": (width,)})
        if config.get("lora"):
            rank = int(config["lora"]["rank"])
            for target in config["lora"]["targets"]:
                if target not in LORA_TARGETS:
                    raise ValueError(f"unknown LoRA target {target!r} in the checkpoint")
                path, attr = LORA_TARGETS[target]
                d_in, d_out = _pretrained(getattr(_get(layer, path), attr)).kernel.shape
                out[f"layer.{i}.lora.{target}.A"] = (d_in, rank)
                out[f"layer.{i}.lora.{target}.B"] = (rank, d_out)
    return out


def load_peft(model, path):
    """Load a checkpoint of :func:`save_peft` into ``model`` (the same pretrained encoder). Adds the
    adapter / LoRA layers first when the model has none. Returns ``model``. Raises ``ValueError`` when
    the checkpoint does not fit the model; nothing is changed then.
    """
    config, arrays = read_peft(path)
    cfg = _model_config(model)
    layers = _layers(model)
    if config["num_hidden_layers"] != len(layers) or (cfg is not None and config["hidden_size"] != cfg.hidden_size):
        raise ValueError(f"{path} was saved for {config['num_hidden_layers']} layers of width {config['hidden_size']}; "
                         f"this model has {len(layers)} of width {getattr(cfg, 'hidden_size', '?')}")
    base = _model_name(cfg)
    if config.get("base_model") and base and Path(config["base_model"]).name != Path(base).name:
        warnings.warn(f"{path} was trained on {config['base_model']}, this model is {base}")
    if not peft_layers(model):   # check the checkpoint against the layers it needs before inserting them
        planned = _planned_shapes(model, config)
        if config.get("layernorm"):
            planned.update({name: var.shape for name, var in layernorm_weights(model).items()})
        _check_fit(planned, arrays, str(path))
        if config["adapter"]:
            add_adapters(model, config["adapter"]["size"])
        if config["lora"]:
            add_lora(model, config["lora"]["rank"], config["lora"]["alpha"], config["lora"]["targets"])
    variables = new_weights(model)
    if config.get("layernorm"):
        variables.update(layernorm_weights(model))
    _assign(variables, arrays, where=str(path))
    return model


def checkpoint_size(path) -> int:
    """Bytes on disk of a checkpoint file or folder (all files in it, recursively)."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    if not path.is_dir():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# -- several adapters, one encoder ------------------------------------------------------------------
class AdapterSet:
    """Several named adapters for one frozen encoder, switched at serving time.

    The model holds one set of adapter variables, the *live* one; the set keeps the others as arrays
    and :meth:`activate` copies a named adapter into the live variables (in place, so compiled
    functions and encoders see the switch). ``activate(None)`` switches adapters off (the frozen
    model, exactly). Train a named adapter by activating it and calling ``fit``.

    ``AdapterSet(model, size)`` adds adapters of that size when the model has none and freezes the base.
    A model that already has trained adapters (e.g. from :func:`load_peft`): pass ``keep="name"`` to
    register them as adapter ``name`` and keep them live; without ``keep`` they are switched off.
    """

    def __init__(self, model, size: int = 64, train_layernorm: bool = False, seed: int = 0,
                 keep: Optional[str] = None):
        had_adapters = bool(peft_layers(model))
        if not had_adapters:
            add_adapters(model, size)
        freeze_base(model, train_layernorm=train_layernorm)
        self.model, self.seed = model, seed
        self.variables = new_weights(model)
        if train_layernorm:
            self.variables.update(layernorm_weights(model))
        self._stored: dict = {}
        self._layernorm = {k: v.numpy() for k, v in self.variables.items() if "layernorm" in k}
        self.active: Optional[str] = None
        self._off = self._fresh(seed)   # up-projections (and B) zero: the frozen model
        if had_adapters and keep:       # the model's (trained) adapter becomes adapter ``keep``, live
            self._stored[keep], self.active = self._values(), keep
        else:
            self._assign(self._off)

    @property
    def names(self) -> list:
        return list(self._stored)

    def _fresh(self, seed: int) -> dict:
        """New adapter weights drawn from ``seed`` the way the layers initialise them: down (glorot
        uniform) and LoRA's A random, up, B and biases zero; LayerNorms as the set found them."""
        rng = np.random.default_rng(seed)
        out = {}
        for name, var in self.variables.items():
            shape = tuple(var.shape)
            if "layernorm" in name:
                out[name] = self._layernorm[name]
            elif name.endswith("down.kernel"):
                limit = np.sqrt(6.0 / sum(shape))
                out[name] = rng.uniform(-limit, limit, shape).astype(np.float32)
            elif name.endswith(".A"):
                limit = 1.0 / np.sqrt(shape[0])
                out[name] = rng.uniform(-limit, limit, shape).astype(np.float32)
            else:
                out[name] = np.zeros(shape, np.float32)
        return out

    def _values(self) -> dict:
        return {k: v.numpy() for k, v in self.variables.items()}

    def _assign(self, arrays: dict) -> None:
        for k, v in self.variables.items():
            v.assign(arrays[k])

    def add(self, name: str, start: Optional[str] = None) -> "AdapterSet":
        """Register adapter ``name``: fresh (the identity) or a copy of adapter ``start``. The live
        adapter is unchanged; :meth:`activate` it to train or use it."""
        if not name or name in self._stored:
            raise ValueError(f"adapter name {name!r} is empty or taken (have: {self.names})")
        if start is not None:
            self._sync()
            if start not in self._stored:
                raise KeyError(f"no adapter {start!r} (have: {self.names})")
            self._stored[name] = {k: v.copy() for k, v in self._stored[start].items()}
        else:
            self._stored[name] = self._fresh(self.seed + 1 + len(self._stored))
        return self

    def _sync(self) -> None:
        """Copy the live variables (possibly trained since activation) into the active adapter's store."""
        if self.active is not None:
            self._stored[self.active] = self._values()

    def activate(self, name: Optional[str]) -> "AdapterSet":
        """Make adapter ``name`` live (``None``: adapters off). The previously live adapter keeps what
        it learned while it was active."""
        if name is not None and name not in self._stored:
            raise KeyError(f"no adapter {name!r} (have: {self.names})")
        self._sync()
        self._assign(self._off if name is None else self._stored[name])
        self.active = name
        return self

    def save(self, name: str, path) -> Path:
        """Save adapter ``name`` as a :func:`save_peft` checkpoint (loadable by :func:`load_peft`)."""
        self._sync()
        if name not in self._stored:
            raise KeyError(f"no adapter {name!r} (have: {self.names})")
        config = peft_config(self.model)
        config["layernorm"] = any("layernorm" in k for k in self.variables)
        config["params"] = int(sum(a.size for a in self._stored[name].values()))
        config["name"] = name
        return _write_folder(self._stored[name], config, path)

    def load(self, name: str, path) -> "AdapterSet":
        """Read a checkpoint into the set as adapter ``name`` (replacing one of that name)."""
        config, arrays = read_peft(path)
        missing = sorted(set(self.variables) - set(arrays))
        unexpected = sorted(set(arrays) - set(self.variables))
        if missing or unexpected:
            raise ValueError(f"{path} does not fit this AdapterSet: missing {missing[:4]}, unexpected {unexpected[:4]}")
        for k, v in self.variables.items():
            if tuple(v.shape) != arrays[k].shape:
                raise ValueError(f"{path}: {k} has shape {arrays[k].shape}, the set {tuple(v.shape)}")
        self._sync()
        self._stored[name] = {k: np.asarray(arrays[k], np.float32) for k in self.variables}
        if self.active == name:
            self._assign(self._stored[name])
        return self
