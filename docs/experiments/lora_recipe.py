"""Experiments behind docs/design-notes.md, "LoRA's recipe": which LoRA trains as well as full fine-tuning.

Notebook 06's setting exactly (validation protocol, cpu profile: 4,096 pairs per epoch in batches of
64, early stopping off, every validation user scored after each epoch), one variant per call:

    python docs/experiments/lora_recipe.py NAME [key=value ...]

keys: kind (lora | full | adapter), lr, rank, alpha, targets (comma list or "every"), warmup (epochs
of linear warm-up, 0 = none), decay (1 = linear decay to zero after the warm-up), epochs, b_mult
(B's effective rate relative to A's: ``B = b_mult * B'``, LoRA+ under Adam), temperature.
Results append to ``$OUT/lora.jsonl`` (default ``/tmp/coldstart-lora``): validation NDCG@10 (mean of
k = 1, 3, 5) before and after every epoch, and the training loss in blocks of 16 steps.

An exploration script, not course code: it reads the splits the course caches and writes only to $OUT.
"""

import json
import os
import sys
import time

import numpy as np

import coldstart
from coldstart import evaluation as E
from coldstart.data import protocol
from coldstart.models import EncodedContextSimilarity, TwoTower, load_encoder, peft
from coldstart.training import pairs

PROFILE = coldstart.get_profile("cpu")
coldstart.set_seed(42)
tf = coldstart.import_tensorflow()
valid = protocol.load_or_make("validation")
OUT = os.environ.get("OUT", "/tmp/coldstart-lora")

name, *kv = sys.argv[1:]
opt = dict(kind="lora", lr=PROFILE.adapters.lora_learning_rate, rank=8, alpha=16.0, targets="every",
           warmup=1.0, decay=0, epochs=PROFILE.adapters.epochs, b_mult=1.0, temperature=0.05)
for item in kv:
    key, value = item.split("=", 1)
    opt[key] = type(opt[key])(value) if not isinstance(opt[key], str) else value
targets = PROFILE.adapters.lora_targets if opt["targets"] == "every" else tuple(opt["targets"].split(","))

tokenizer, enc = load_encoder(PROFILE.encoder.model_name)
examples = pairs.training_examples(valid, max_k=5, seed=0)
vtexts = np.array(valid.texts())
data, steps = pairs.tower_dataset(examples, vtexts, tokenizer, PROFILE.adapters.pairs, opt["epochs"],
                                  PROFILE.training.batch_size, item_len=PROFILE.encoder.max_len)

if opt["kind"] == "lora":
    peft.add_lora(enc, rank=opt["rank"], alpha=opt["alpha"], targets=targets)
    if opt["b_mult"] != 1.0:
        # LoRA+ under Adam: B = c * B' moves c times faster than A for the same per-weight step
        for layer in peft.peft_layers(enc).values():
            layer.scale *= opt["b_mult"]
elif opt["kind"] == "adapter":
    peft.add_adapters(enc, size=PROFILE.adapters.size)
if opt["kind"] != "full":
    peft.freeze_base(enc)


class Schedule(tf.keras.optimizers.schedules.LearningRateSchedule):
    def __init__(self, peak, warm, total, decay):
        self.peak, self.warm, self.total, self.decay = peak, max(1, warm), total, decay

    def __call__(self, step):
        s = tf.cast(step + 1, tf.float32)
        rate = self.peak * tf.minimum(1.0, s / self.warm)
        if self.decay:
            rate *= tf.clip_by_value((self.total - s) / max(1, self.total - self.warm), 0.0, 1.0)
        return rate


total = steps * opt["epochs"]
warm = int(round(opt["warmup"] * steps))
rate = Schedule(opt["lr"], warm, total, opt["decay"]) if (warm or opt["decay"]) else opt["lr"]
tower = TwoTower(enc, temperature=opt["temperature"])
tower.compile(optimizer=tf.keras.optimizers.Adam(rate))


def validation_ndcg():
    rec = EncodedContextSimilarity.of_catalog(tokenizer, enc, valid.texts(), max_len=PROFILE.encoder.max_len,
                                              batch_size=PROFILE.encoder.batch_size, progress=False)
    return E.mean_ndcg(rec, valid, max_users=PROFILE.evaluation.users)


class Log(tf.keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.val, self.losses, self.prev = [validation_ndcg()], [], 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.prev = 0.0

    def on_train_batch_end(self, batch, logs=None):
        mean = float(logs["loss"])   # tf-keras reports the running mean over the epoch
        self.losses.append((batch + 1) * mean - batch * self.prev)
        self.prev = mean

    def on_epoch_end(self, epoch, logs=None):
        self.val.append(validation_ndcg())
        print(f"{name} epoch {epoch + 1}: val {self.val[-1]:.4f}", flush=True)


log = Log()
start = time.perf_counter()
tower.fit(data, steps_per_epoch=steps, epochs=opt["epochs"], callbacks=[log], verbose=0)
blocks = [round(float(np.mean(log.losses[i:i + 16])), 3) for i in range(0, len(log.losses), 16)]
row = dict(name=name, **opt, val=[round(v, 4) for v in log.val], loss_blocks=blocks,
           trainable=peft.trainable_report(enc)["trainable"], minutes=round((time.perf_counter() - start) / 60, 2))
os.makedirs(OUT, exist_ok=True)
with open(os.path.join(OUT, "lora.jsonl"), "a") as f:
    f.write(json.dumps(row) + "\n")
print(json.dumps(row))
