"""Omniglot's two standard protocols at full scale, as lists of alphabets: Koch et al.'s and Vinyals et al.'s.

Omniglot (Lake et al. 2015) ships as two archives: ``images_background`` (30 alphabets, 964
characters) and ``images_evaluation`` (20 alphabets, 659 characters), 20 drawings per character.

**Koch et al. 2015** (``koch_split``): train on the 30 background alphabets; validate 20-way
one-shot within one alphabet on the 10 evaluation alphabets that Lake's runs do not use
(``KOCH_VALIDATION_ALPHABETS``); test once on Lake's 20 runs (``all_runs.zip``), whose 800 images
are drawings of the other 10 evaluation alphabets, two runs per alphabet (``LAKE_RUN_ALPHABETS``;
``tests/test_omniglot_protocols.py`` checks this pixel for pixel against the archives).

**Vinyals et al. 2016** (``vinyals_split``): 1,200 characters train (1,028) and validate (172),
the other 423 test; every character rotated by 0, 90, 180 and 270 degrees gives four classes, at
28x28. Episodes are drawn over all test classes, not within one alphabet. The split is the one
the common reference implementations read, defined in the Prototypical Networks repository
(Snell et al. 2017): github.com/jakesnell/prototypical-networks, files
``data/omniglot/splits/vinyals/{train,val,test,trainval}.txt``, added in commit
8fdc675e33f630999fe39c1465647a859ad69621 (unchanged at c9bb4d258267c11cb6e23f0a19242d24ca98ad8a);
MIT licence, copyright (c) 2017 Jake Snell. Those files list every character and rotation
("Hebrew/character01/rot000"); none of them is copied here. What they show, and what is written
down below as alphabet names: every alphabet lies whole in one part, except Gurmukhi, whose
characters 1-41 train and 42-45 test (1,028 = 1,200 - 172 training characters end inside it:
the 1,200 are a prefix of one ordering of the alphabets). trainval.txt is train.txt + val.txt.
"""
import numpy as np

from .datasets import LabelledImages

# ----- the archives -------------------------------------------------------------------------------
BACKGROUND_ALPHABETS = (
    "Alphabet_of_the_Magi", "Anglo-Saxon_Futhorc", "Arcadian", "Armenian", "Asomtavruli_(Georgian)", "Balinese",
    "Bengali", "Blackfoot_(Canadian_Aboriginal_Syllabics)", "Braille", "Burmese_(Myanmar)", "Cyrillic",
    "Early_Aramaic", "Futurama", "Grantha", "Greek", "Gujarati", "Hebrew", "Inuktitut_(Canadian_Aboriginal_Syllabics)",
    "Japanese_(hiragana)", "Japanese_(katakana)", "Korean", "Latin", "Malay_(Jawi_-_Arabic)", "Mkhedruli_(Georgian)",
    "N_Ko", "Ojibwe_(Canadian_Aboriginal_Syllabics)", "Sanskrit", "Syriac_(Estrangelo)", "Tagalog", "Tifinagh")
EVALUATION_ALPHABETS = (
    "Angelic", "Atemayar_Qelisayer", "Atlantean", "Aurek-Besh", "Avesta", "Ge_ez", "Glagolitic", "Gurmukhi", "Kannada",
    "Keble", "Malayalam", "Manipuri", "Mongolian", "Old_Church_Slavonic_(Cyrillic)", "Oriya", "Sylheti",
    "Syriac_(Serto)", "Tengwar", "Tibetan", "ULOG")
CHARACTERS = 1623  # 964 background + 659 evaluation


def archive_of(alphabet):
    """"background" or "evaluation": the archive that holds ``alphabet``."""
    if alphabet in BACKGROUND_ALPHABETS:
        return "background"
    if alphabet in EVALUATION_ALPHABETS:
        return "evaluation"
    raise ValueError(f"{alphabet!r} is not an Omniglot alphabet")


# ----- Koch et al. 2015 and Lake's runs ------------------------------------------------------------
# the alphabet of each of Lake's 20 runs (all_runs.zip): two runs per alphabet, in alphabetical order
LAKE_RUN_ALPHABETS = {f"run{i + 1:02d}": alphabet for i, alphabet in enumerate(
    a for a in ("Atlantean", "Ge_ez", "Glagolitic", "Gurmukhi", "Kannada", "Malayalam", "Manipuri",
                "Old_Church_Slavonic_(Cyrillic)", "Tengwar", "Tibetan") for _ in range(2))}
LAKE_TEST_ALPHABETS = tuple(dict.fromkeys(LAKE_RUN_ALPHABETS.values()))
# the evaluation alphabets that Lake's runs do not use: Koch et al.'s validation alphabets
KOCH_VALIDATION_ALPHABETS = tuple(a for a in EVALUATION_ALPHABETS if a not in LAKE_TEST_ALPHABETS)


def koch_split(background, evaluation):
    """(train, val) of Koch et al.'s protocol: every character of the 30 background alphabets trains, the 10
    ``KOCH_VALIDATION_ALPHABETS`` of ``evaluation`` validate (20-way one-shot within one alphabet: pass the
    val part's ``groups`` to the episode sampler). Lake's runs are the test. Both arguments are
    ``load_omniglot`` results: of ``images_background``, and of ``images_evaluation`` (whole, or its
    validation alphabets alone)."""
    _check_alphabets(background, BACKGROUND_ALPHABETS, "background")
    _check_alphabets(evaluation, KOCH_VALIDATION_ALPHABETS, "evaluation")
    return background, evaluation.select_groups(KOCH_VALIDATION_ALPHABETS)


# ----- Vinyals et al. 2016 -------------------------------------------------------------------------
VINYALS_ROTATIONS = (0, 90, 180, 270)  # degrees, counter-clockwise; each (character, rotation) is one class
VINYALS_SPLIT_ALPHABET = "Gurmukhi"  # the one alphabet in two parts: its characters 1-41 train, 42-45 test
VINYALS_SPLIT_AT = 41
VINYALS_VAL_ALPHABETS = ("Hebrew", "Mkhedruli_(Georgian)", "Armenian", "Early_Aramaic", "Bengali")  # 172 characters
VINYALS_TEST_ALPHABETS = (  # 419 characters, and Gurmukhi's characters 42-45: 423
    "Kannada", "Keble", "Malayalam", "Manipuri", "Mongolian", "Old_Church_Slavonic_(Cyrillic)", "Oriya",
    "Syriac_(Serto)", "Sylheti", "Tengwar", "Tibetan", "ULOG")
VINYALS_TRAIN_ALPHABETS = tuple(  # 987 characters, and Gurmukhi's characters 1-41: 1,028
    a for a in BACKGROUND_ALPHABETS + EVALUATION_ALPHABETS
    if a not in VINYALS_VAL_ALPHABETS + VINYALS_TEST_ALPHABETS + (VINYALS_SPLIT_ALPHABET,))
VINYALS_CHARACTERS = {"train": 1028, "val": 172, "test": 423}  # the published counts, before rotation
VINYALS_PARTS = ("train", "val", "test", "trainval")


def vinyals_alphabets(part):
    """The whole alphabets of ``part`` ("train", "val", "test" or "trainval"), without Gurmukhi's share."""
    whole = {"train": VINYALS_TRAIN_ALPHABETS, "val": VINYALS_VAL_ALPHABETS, "test": VINYALS_TEST_ALPHABETS,
             "trainval": VINYALS_TRAIN_ALPHABETS + VINYALS_VAL_ALPHABETS}
    if part not in whole:
        raise ValueError(f"part must be one of {VINYALS_PARTS}, got {part!r}")
    return whole[part]


def in_vinyals_part(class_name, part):
    """Whether the character ``class_name`` ("Alphabet/characterNN") belongs to Vinyals's ``part``."""
    alphabet, character = class_name.split("/")[:2]
    if alphabet == VINYALS_SPLIT_ALPHABET:
        number = int(character[len("character"):])
        return part in ("train", "trainval") if number <= VINYALS_SPLIT_AT else part == "test"
    return alphabet in vinyals_alphabets(part)


def vinyals_split(background, evaluation, rotations=VINYALS_ROTATIONS, parts=("train", "val", "test")):
    """The ``parts`` of Vinyals et al.'s split (a tuple of LabelledImages in that order), each character
    rotated by every angle of ``rotations`` into a class of its own ("Alphabet/characterNN/rot090"; its
    group stays the alphabet). ``rotations=(0,)`` gives the characters alone."""
    everything = merge(background, evaluation)
    _check_alphabets(everything, BACKGROUND_ALPHABETS + EVALUATION_ALPHABETS, "background + evaluation")
    result = []
    for part in parts:
        classes = [c for c, name in enumerate(everything.class_names) if in_vinyals_part(name, part)]
        result.append(with_rotations(everything.select_classes(classes), rotations))
    return tuple(result)


def merge(first, second):
    """One LabelledImages of two with disjoint class names (the two archives): the second's labels follow the
    first's."""
    overlap = set(first.class_names) & set(second.class_names)
    if overlap:
        raise ValueError(f"the two parts share classes, e.g. {sorted(overlap)[:3]}")
    names = None if first.names is None or second.names is None else list(first.names) + list(second.names)
    return LabelledImages(np.concatenate([first.images, second.images]),
                          np.concatenate([first.labels, second.labels + len(first.class_names)]),
                          list(first.class_names) + list(second.class_names),
                          list(first.groups) + list(second.groups), names)


def with_rotations(part, rotations=VINYALS_ROTATIONS):
    """Every class of ``part`` once per angle of ``rotations`` (multiples of 90 degrees, counter-clockwise),
    each a class of its own named "CLASS/rotNNN" with the group of its class. Only the classes present are
    kept; labels are renumbered 0.. in (class, rotation) order."""
    rotations = tuple(rotations)
    if not rotations or any(r % 90 for r in rotations) or len(set(r % 360 for r in rotations)) != len(rotations):
        raise ValueError(f"rotations must be distinct multiples of 90 degrees, got {rotations}")
    classes = part.classes
    new_index = np.searchsorted(classes, part.labels)
    images, labels, names = [], [], []
    for k, angle in enumerate(rotations):
        images.append(np.rot90(part.images, k=(angle // 90) % 4, axes=(2, 3)))
        labels.append(new_index * len(rotations) + k)
        if part.names is not None:
            names += [f"{name}/rot{angle % 360:03d}" for name in part.names]
    class_names = [f"{part.class_names[c]}/rot{angle % 360:03d}" for c in classes for angle in rotations]
    groups = None if part.groups is None else [part.groups[c] for c in classes for _ in rotations]
    order = np.argsort(np.concatenate(labels), kind="stable")  # the images of one class together
    return LabelledImages(np.ascontiguousarray(np.concatenate(images)[order]), np.concatenate(labels)[order],
                          class_names, groups, None if part.names is None else np.asarray(names)[order].tolist())


def _check_alphabets(part, expected, what):
    present = set(np.asarray(part.groups)[part.classes]) if part.groups is not None else set()
    missing = sorted(set(expected) - present)
    if missing:
        raise ValueError(f"the {what} set lacks the alphabets {missing[:5]}{' ...' if len(missing) > 5 else ''}: "
                         f"give the full archive")
