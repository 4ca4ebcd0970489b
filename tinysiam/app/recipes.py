"""Named recipes: the settings of the headline runs, chosen on validation classes (docs/recipes.md).

``tinysiam train --recipe NAME`` starts from a recipe's settings; options given
on the command line override them, and every setting a recipe leaves out keeps
``TrainConfig``'s default. ``tinysiam demo`` trains the demo recipes and
``tinysiam folds`` takes ``--recipe`` too.
"""
from .errors import UserError

# Omniglot at 28x28: batch-hard triplets over 32 characters x 4 drawings, Adam with a cosine decay of
# its rate, half-strength distortions, embeddings averaged over one-pixel shifts, validated on whole
# held-out alphabets, 20-way within one alphabet like Lake's runs
_OMNIGLOT = dict(preset="omniglot28", loss="triplet", margin=1.0, batch=128, per_class=4, optimizer="adam", lr=3e-3,
                 lr_schedule="cosine", augment=True, augment_strength=0.5, tta=True, val_split="alphabets",
                 val_way=20, val_episodes=500)

# Vinyals et al.'s split (already rotated), validated 20-way one-shot across its validation characters' classes
_VINYALS = dict(_OMNIGLOT, data="vinyals", val_split="classes", epochs=8)

RECIPES = {
    # `tinysiam demo`: the bundled minimal background set, 1000 steps (under 3 minutes on 2 cores)
    "omniglot-demo": dict(_OMNIGLOT, data="omniglot-demo", epochs=10, steps_per_epoch=100),
    # the same on the official minimal archives (--data-dir), 30 minutes on 2 cores
    "omniglot-30min": dict(_OMNIGLOT, data="omniglot-minimal", epochs=30, steps_per_epoch=360),
    # Koch et al.'s protocol on the full set (--data-dir): all 30 background alphabets, each character also in
    # three rotations as classes of its own, 30 x 300 steps (32-35 minutes of training on 2 cores); validated
    # 20-way within the 10 evaluation alphabets Lake's runs do not use (docs/recipes.md)
    "omniglot-full": dict(_OMNIGLOT, data="omniglot", rotations=True, epochs=30, steps_per_epoch=300),
    # Vinyals et al.'s protocol (--data-dir): the 1,028 training characters x 4 rotations, omniglot-full's tower,
    # loss and schedule; validated 20-way one-shot over the 172 validation characters x 4 rotations, whose 13,760
    # images (x5 shifts) take about 40 s to embed, hence few long epochs: 8 x 1000 steps
    "vinyals-triplet": dict(_VINYALS, steps_per_epoch=1000),
    # Sung et al. 2018's Relation Network on the same split: the relation28 embedding and relation module, 5-way
    # 1-shot training episodes with 19 queries per class as in their code, Adam at 3e-3 with cosine decay,
    # half-strength distortions, no shifts at test time; 8 x 700 steps (docs/recipes.md: 20-way episodes and a rate
    # of 1e-3 validated lower)
    "vinyals-relation": dict(_VINYALS, preset="relation28", loss="relation", way=5, shot=1, batch=100, tta=False,
                             steps_per_epoch=700),
    # one fold of the AT&T faces (`tinysiam folds`): standardised images, flips and distortions, unit-length
    # embeddings, triplets over 16 subjects x 4 photos, margin 0.2; 600 steps (validation EER over the 8 folds
    # 8.1%, against 9.3% at 150 steps)
    "faces": dict(data="faces", preset="faces", loss="triplet", margin=0.2, batch=64, per_class=4, optimizer="adam",
                  lr=3e-3, lr_schedule="cosine", normalize=True, standardize=True, augment=True, flip=True,
                  epochs=20, steps_per_epoch=30, val_way=5),
    # Koch et al. 2015's own training (docs/recipes.md): their net and head at 105x105, 128 pairs a step, SGD with
    # each layer's rate, momentum and L2 weight (tower layers with weights, then the head), rates down 1% an epoch,
    # momentum ramped from 0.5, their distortions, and the best epoch by 20-way one-shot accuracy on 320 episodes
    # of held-out alphabets, stopping after 20 epochs without a better one. The paper does not publish its
    # per-layer values: these are one setting for every layer, the rate chosen on validation alphabets. A GPU job
    "koch2015": dict(data="omniglot", preset="koch", loss="koch", optimizer="sgd", batch=128, lr=1e-2,
                     layer_lr_scale=(1.0,) * 6, layer_momentum=(0.9,) * 6, layer_weight_decay=(2e-4,) * 6,
                     momentum_ramp=10, lr_schedule="exponential", lr_decay=0.99, augment=True, val_split="alphabets",
                     val_way=20, val_episodes=320, epochs=200, steps_per_epoch=1000, patience=20),
    # Bromley et al.'s time-delay net on Omniglot's pen trajectories (docs/signatures.md): batch-hard triplets
    # over 32 characters x 4 drawings, margin 0.5, Adam at 1e-3, trajectory distortions, 2000 steps, validated
    # 20-way within whole held-out alphabets; tested on the three test alphabets next to DTW and raw pixels
    "tdnn": dict(data="strokes", preset="tdnn", loss="triplet", margin=0.5, batch=128, per_class=4, optimizer="adam",
                 lr=1e-3, augment=True, val_split="alphabets", val_way=20, val_episodes=500, epochs=10,
                 steps_per_epoch=200),
    # SICK relatedness from scratch (docs/sick.md): the text-conv tower shared by both sentences, Tai et al.'s head on
    # |u - v| and u * v, KL divergence to each pair's score distribution; 25 pairs a step, Adam at 3e-3, 6 x 180
    # steps (6 passes over the 4,500 training pairs), the epoch with the best Pearson's r on the trial pairs kept
    "sick": dict(data="sick", preset="text-conv", loss="relatedness", optimizer="adam", lr=3e-3, batch=25, epochs=6,
                 steps_per_epoch=180),
    # `tinysiam demo --data digits`: seconds on scikit-learn's 8x8 digits
    "digits-demo": dict(data="digits", preset="digits", loss="triplet", epochs=6, steps_per_epoch=60, val_way=5),
}


def recipe_settings(name):
    """The settings of recipe ``name`` (a fresh dict); a UserError naming --recipe for an unknown one."""
    if name not in RECIPES:
        raise UserError(f"--recipe must be one of {', '.join(RECIPES)}, got {name!r}")
    return dict(RECIPES[name])
