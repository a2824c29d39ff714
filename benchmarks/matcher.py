"""How far to trust the offline model's query matcher: a labelled phrase list.

Each phrase is labelled with the CamVid class it should map to (the 11-class
grouping: lane markings are Road, a kerb is Pavement, a bus is a Car) or with "none"
(no CamVid class holds it: animals, objects indoors, scenery CamVid lacks). The list
holds paraphrases that are *not* in the matcher's synonym table and the near-misses
of issue 16 (dog, umbrella, traffic light, bus, lane marking, shop sign, cyclist,
kerb, text on the sign).

At the shipped threshold (and at a few others, to show the trade-off) it reports:

- precision: of the phrases the matcher accepts, the share whose best class is the label;
- recall: of the phrases labelled with a class, the share accepted with that class best;
- false-match rate: of the "none" phrases, the share accepted;
- loose: accepted matches :func:`clusterlens.models.text.loose_reason` calls loose
  (best score below ``LOOSE_MATCH``, or the class named only by the phrase's modifier,
  as in "text on the sign"); ``select`` notes them. Reported: how many right and how
  many false matches are flagged, whether every accepted "none" phrase is, and the
  precision of the matches left unflagged.

Run: ``.venv/bin/python benchmarks/matcher.py``. Writes
``benchmarks/results/matcher.json`` and prints a Markdown table (docs/benchmarks.md
is left to whoever owns it).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter

from _report import machine, markdown_table, publish
from clusterlens.models.offline.segmenter import CAMVID_OUTSIDE, CAMVID_SYNONYMS, COCO_OUTSIDE
from clusterlens.models.text import DEFAULT_THRESHOLD, LOOSE_MATCH, QueryMatcher, loose_reason

NONE = "none"
PHRASES: dict[str, tuple[str, ...]] = {
    "Sky": (
        "the sky", "blue sky", "cloudy sky", "overcast sky", "the clouds above",
        "sky above the buildings", "grey clouds",
    ),
    "Building": (
        "buildings", "the houses", "shop fronts", "office block", "apartment building",
        "the facade", "skyscraper", "storefront", "brick building", "a church",
    ),
    "Pole": (
        "lamp posts", "street lights", "utility poles", "a telegraph pole", "bollards",
        "lamppost", "the pole", "a metal post",
    ),
    "Road": (
        "the road", "street", "asphalt", "the driving lane", "tarmac", "lane marking",
        "road markings", "the carriageway", "the highway", "the street surface",
    ),
    "Pavement": (
        "sidewalk", "pavement", "footpath", "kerb", "the curb", "walkway", "footway",
        "the sidewalk along the road",
    ),
    "Tree": (
        "trees", "bushes", "vegetation", "hedges", "foliage", "a palm tree", "green leaves",
        "shrubs",
    ),
    "SignSymbol": (
        "traffic sign", "road signs", "traffic lights", "stop sign", "street sign",
        "signpost", "shop sign", "speed limit sign", "traffic signal", "a traffic light",
    ),
    "Fence": ("fence", "railings", "a barrier", "guard rail", "metal fence", "wooden fence"),
    "Car": (
        "cars", "parked cars", "vehicles", "a van", "trucks", "the bus", "a taxi",
        "automobiles", "a lorry", "an suv", "moving traffic", "a police car",
    ),
    "Pedestrian": (
        "pedestrians", "people", "a person walking", "people crossing the street", "a man",
        "a woman", "children", "a crowd", "a man crossing the street", "someone on foot",
    ),
    "Bicyclist": (
        "cyclists", "a cyclist", "a bicycle", "bike rider", "a person riding a bike",
        "bicyclist", "someone on a bike",
    ),
    NONE: (
        "a dog", "the dog", "a cat", "an umbrella", "a giraffe", "a dragon", "an elephant",
        "a horse", "birds", "a pizza", "a laptop", "the ocean", "mountains", "a river",
        "snow", "a boat", "an airplane", "a chair", "a table", "a phone", "a book",
        "the moon", "fire", "a cow", "a sheep", "a teddy bear", "a sandwich", "a keyboard",
        "a television", "a cup", "a violin", "a unicorn", "a clock", "a vase", "a guitar",
        "text on the sign", "a toothbrush", "a refrigerator", "a spoon", "a ghost",
    ),
}  # fmt: skip
#: Written after the first list's results were known, and never used to choose the
#: threshold: new paraphrases and new near-misses, to check what was chosen on PHRASES.
HELD_OUT: dict[str, tuple[str, ...]] = {
    "Sky": ("the open sky", "a clear sky", "sky overhead", "the evening sky", "white clouds"),
    "Building": (
        "the buildings on the right", "a row of houses", "a tall building", "shops",
        "a warehouse", "the walls of the houses", "a garage",
    ),
    "Pole": (
        "a streetlight", "light poles", "a signpost pole", "posts along the road", "metal posts",
    ),
    "Road": (
        "the roadway", "the lane ahead", "the road surface", "a zebra crossing",
        "the junction", "the road in front of the car",
    ),
    "Pavement": ("the footpath on the left", "a paved sidewalk", "the kerbside", "the walkway"),
    "Tree": ("a big tree", "the trees along the street", "greenery", "a hedge", "the bushes"),
    "SignSymbol": (
        "a road sign", "the traffic lights ahead", "a give way sign", "a no entry sign",
        "direction signs",
    ),
    "Fence": ("a fence along the road", "metal railings", "a low wall of railings", "a wire fence"),
    "Car": (
        "a car", "the red car", "a parked van", "a white car", "a pickup truck", "a minibus",
        "cars in traffic",
    ),
    "Pedestrian": (
        "a pedestrian", "people on the pavement", "a child", "a girl", "two people walking",
        "a man with a bag",
    ),
    "Bicyclist": ("a man on a bicycle", "bikes", "a cyclist on the road", "a biker"),
    NONE: (
        "a rabbit", "a penguin", "a bear", "a lion", "a whale", "a fish", "a tiger",
        "a monkey", "a beach", "a forest fire", "a desert", "a glacier", "a volcano",
        "a piano", "a lamp on a desk", "a bed", "a sofa", "a bottle", "a banana", "an apple",
        "a cake", "a wine glass", "a pair of scissors", "a hair dryer", "a microwave",
        "a kite", "a surfboard", "a baseball bat", "a frisbee", "skis", "a rainbow",
        "the stars", "a spaceship", "a robot", "a candle", "the text on the banner",
        "a painting", "a mirror", "a snake", "a duck",
    ),
}  # fmt: skip
#: Written after the held-out list showed the matcher reading modifiers ("people on the
#: pavement" -> Pavement) and before any change made for it: the check of that change.
FRESH: dict[str, tuple[str, ...]] = {
    "Sky": ("the sky behind the trees", "a stormy sky", "blue sky with clouds", "the skyline"),
    "Building": (
        "houses along the street", "the building behind the car", "a block of flats",
        "a shop window", "the station building", "a brick wall of a house",
    ),
    "Pole": ("the lamp post on the corner", "a tall pole", "street lamps", "a post by the road"),
    "Road": (
        "the road ahead of us", "the tarmac road", "an empty street", "the lane markings",
        "the road next to the pavement", "a wet road",
    ),
    "Pavement": (
        "the pavement next to the road", "a sidewalk with people", "the curb on the left",
        "the footpath",
    ),
    "Tree": ("trees behind the fence", "a tree near the road", "the leaves", "some shrubs"),
    "SignSymbol": (
        "the sign above the road", "a traffic light on a pole", "the stop sign", "a sign",
        "signs on the building",
    ),
    "Fence": ("the fence beside the pavement", "a railing", "iron railings", "a fence"),
    "Car": (
        "the car in front", "cars parked on the street", "a black car", "a car on the road",
        "the van next to the building", "a double-decker bus", "the taxi",
    ),
    "Pedestrian": (
        "the woman on the sidewalk", "people near the shop", "a man in a coat",
        "a person on the pavement", "a boy", "pedestrians crossing the road",
    ),
    "Bicyclist": (
        "the cyclist next to the car", "a bike on the road", "a woman on a bike", "cyclists",
    ),
    NONE: (
        "a kangaroo", "a zebra", "an owl", "a shark", "a jellyfish", "a cactus",
        "a waterfall", "a lake", "a cave", "an iceberg", "a keyboard and mouse", "a carpet",
        "a pillow", "a toaster", "a fork", "a bowl of soup", "an orange", "a donut",
        "a hot dog", "a tennis racket", "a skateboard", "a ball", "a crown", "a sword",
        "a helmet on a table", "the galaxy", "lightning", "a tornado", "a spider",
        "a butterfly", "a letter on the table", "the words on the poster",
    ),
}  # fmt: skip
#: Written before any change made for the precision target of issue 16 (and before
#: the matcher was run on it), to judge that change once (the category outside
#: vocabulary); nothing was chosen on it before that. Its false matches then led to the
#: compound-head reading, which was built on it and the three lists above (JUDGE2 judges
#: that). Labels follow CamVid's 11-class grouping of its 32 classes (SegNet
#: release) and the conventions of the lists above: a wall, a bridge are Building;
#: grass is Tree (VegetationMisc); a tram is Car (Train), a motorbike Bicyclist
#: (MotorcycleScooter); a bus or lorry is Car; lane markings Road, a kerb Pavement;
#: animals, and text or pictures on a sign, are "none".
JUDGE: dict[str, tuple[str, ...]] = {
    "Sky": (
        "sky", "the grey sky", "a cloudless sky", "rain clouds",
        "the sky at the top of the picture", "bright sky above the road", "dark clouds",
        "patches of blue sky", "the sky between the buildings", "a hazy sky",
    ),
    "Building": (
        "a building", "the house on the right", "a shop", "a pub", "a supermarket",
        "terraced houses", "the rooftops", "a stone wall", "a bridge",
        "the windows of the building", "an old church", "a cottage", "a tall office building",
    ),
    "Pole": (
        "a lamppost on the left", "the street lamp", "poles", "a flagpole", "telephone poles",
        "a metal pole", "a bollard", "the pole holding the sign", "concrete posts",
    ),
    "Road": (
        "a stretch of road", "roads", "a road", "the street ahead", "white lines on the road",
        "arrows painted on the road", "a pedestrian crossing", "double yellow lines",
        "potholes", "a speed bump", "the road in the middle", "a bus lane",
        "the cobbled street",
    ),
    "Pavement": (
        "the sidewalk", "sidewalks", "the pavement on the right", "a curb",
        "the kerb next to the road", "paving stones", "a pedestrian path",
        "the sidewalk in front of the shops", "the footpaths",
    ),
    "Tree": (
        "a tree", "the trees on the right", "tall trees", "a bush", "the hedge",
        "green plants", "the grass", "an oak tree", "tree branches", "ivy on the wall",
        "leafy trees",
    ),
    "SignSymbol": (
        "a small sign", "signs", "the road sign on the right", "the red light", "a one way sign",
        "a parking sign", "a warning sign", "a bus stop sign",
        "the traffic lights at the junction", "street name signs", "a green traffic light",
        "the sign above the shop",
    ),
    "Fence": (
        "fences", "the fence", "a chain-link fence", "a picket fence",
        "railings along the pavement", "a metal barrier", "crash barriers",
        "the railing on the bridge",
    ),
    "Car": (
        "car", "the car on the left", "a parked car", "a blue car", "vans", "a delivery van",
        "lorries", "a red bus", "buses", "the truck", "a jeep", "a sports car", "a tram",
        "a car driving away", "a hatchback", "the traffic",
    ),
    "Pedestrian": (
        "the people", "a jogger", "a woman pushing a pram", "an old man", "a group of people",
        "tourists", "a man walking a dog", "people waiting at the bus stop", "a policeman",
        "schoolchildren", "the person next to the car", "a person",
    ),
    "Bicyclist": (
        "a bicyclist", "the cyclists", "a bike", "bicycles", "a man riding a bike",
        "a child on a bicycle", "a parked bicycle", "a motorbike", "a cyclist in a helmet",
    ),
    NONE: (
        # vehicles CamVid lacks
        "a ship", "a sailing boat", "a helicopter", "a jet plane", "a rocket", "a canoe",
        "a hot air balloon", "a submarine",
        # street furniture no class holds
        "a park bench", "a rubbish bin", "a trash can", "a fire hydrant", "a mailbox",
        "a post box",
        # animals
        "a puppy", "a dog on a leash", "two dogs", "a pigeon", "a squirrel", "a fox",
        "a deer", "a goat", "a pig", "a chicken", "a crocodile",
        # indoor objects
        "a desk lamp", "a bookshelf", "a fridge", "a washing machine", "curtains",
        "a ceiling fan", "a coffee mug", "a wardrobe", "a bathtub", "a rug", "a doll",
        # things in the sky that are not the sky
        "a crescent moon", "a shooting star", "a planet", "a comet", "a kite in the sky",
        "a satellite",
        # scenery CamVid lacks
        "a swimming pool", "sand dunes", "a canal", "a frozen lake",
        # materials
        "plastic", "velvet", "marble", "leather", "wool",
        # food, things carried
        "a burger", "an ice cream", "a plate of pasta", "a backpack", "a handbag",
        # look-alikes of poles, trees, people, buildings, fences, signs
        "a walking stick", "a fishing rod", "a broom", "a bouquet of flowers", "a mushroom",
        "a mannequin", "a scarecrow", "a tent", "a cage", "the writing on the sign",
        "a painting on the wall",
    ),
}  # fmt: skip
#: Written for issue 16's second round (compound nouns) before any change made for it and
#: before the matcher was run on it, to judge that change once: never used to choose
#: anything. Same labelling as JUDGE (CamVid's 11-class grouping of its 32 classes, and
#: the lists above): a wall, bridge, tunnel or archway is Building; grass, a lawn, a
#: flower bed is Tree; a train or tram, a bus, lorry, coach, and the parts of a car
#: (doors, tyres, roof) are Car; a motorcycle or moped, and a bicycle's parts, are
#: Bicyclist; lane and stop lines, crossings are Road; a kerb, a car park (CamVid's
#: ParkingBlock) and the hard shoulder (RoadShoulder) are Pavement; animals, street
#: furniture no class holds (benches, bins, bike racks, phone boxes), and text on a sign
#: are "none". Many phrases are noun compounds, in both directions: the last noun names
#: the thing ("a pedestrian bridge" is a bridge, "a car key" a key, "a traffic warden"
#: a person), and a few are not ("a traffic jam" is cars).
JUDGE2: dict[str, tuple[str, ...]] = {
    "Sky": (
        "the sky over the houses", "a storm cloud", "cloud cover", "a pink sky at dusk",
        "the sky above the trees on the left", "white fluffy clouds", "a bit of sky",
        "the sky behind the lamp posts", "thick cloud", "the blue of the sky", "grey skies",
    ),
    "Building": (
        "a pedestrian bridge", "a footbridge", "a road bridge", "a railway bridge",
        "a garden wall", "a brick wall", "a police station", "a petrol station",
        "a bus station", "a car factory", "a car showroom", "a multi-storey car park",
        "a bicycle shop", "a fire station", "a townhouse", "a stone house",
        "the top of the building", "the wall beside the road", "a tunnel entrance",
        "an archway", "a fire escape", "a chimney", "the roof of the shop", "a glass tower",
        "a school building", "house fronts", "walls",
    ),
    "Pole": (
        "a traffic light pole", "a street light pole", "a wooden pole", "the base of the pole",
        "a pole with a sign on it", "lamp posts along the pavement", "a row of street lights",
        "two poles", "a pole next to the car", "a concrete lamp post", "telegraph posts",
        "lampposts",
    ),
    "Road": (
        "a cycle lane", "a one-way street", "a stop line", "a box junction", "a roundabout",
        "a crossroads", "a side street", "an alley", "a motorway", "a country lane",
        "a mountain road", "a tree-lined street", "the left side of the road",
        "the middle of the road", "a school crossing", "a dual carriageway",
        "the road beyond the junction",
    ),
    "Pavement": (
        "a car park", "the hard shoulder", "pavement slabs", "kerbstones",
        "the edge of the pavement", "the kerb beside the parked cars",
        "the footpath by the trees", "a wide pavement", "the pavement outside the shop",
        "a raised kerb", "kerbs", "pavements",
    ),
    "Tree": (
        "a tree trunk", "tree roots", "a willow tree", "a row of trees", "a fir tree",
        "a hedgerow", "a lawn", "a grass verge", "a flower bed", "weeds",
        "trees in front of the house", "overhanging branches", "a tree behind the lamp post",
    ),
    "SignSymbol": (
        "a sign post", "a motorway sign", "a roadside sign", "pedestrian lights", "a pub sign",
        "a neon sign", "a billboard", "a dead end sign", "a no parking sign",
        "a brown tourist sign", "signs on a lamppost", "traffic signals at the crossing",
        "a yellow traffic light", "a road sign next to the tree", "a sign for the car park",
        "signposts",
    ),
    "Fence": (
        "a pedestrian barrier", "a garden fence", "a fence panel", "a fence around the park",
        "wooden railings", "a safety barrier", "the railings by the road",
        "a tall fence behind the cars", "a wire mesh fence",
    ),
    "Car": (
        "car doors", "a car roof", "car tyres", "the back of a lorry", "a sky blue car",
        "a traffic jam", "a school bus", "a police van", "a fire engine", "an ice cream van",
        "a bin lorry", "a tow truck", "a coach", "a tour bus", "a train", "an ambulance",
        "a racing car", "the cars behind the bus", "a car under a tree", "a post van",
        "bus wheels", "a removal van", "taxis",
    ),
    "Pedestrian": (
        "a street vendor", "a street performer", "a road worker", "a traffic warden",
        "a police officer", "a pavement artist", "a wheelchair user",
        "a man next to a lamppost", "a woman standing by the fence", "shoppers",
        "a couple walking", "people on the zebra crossing", "a man in a wheelchair",
        "a person under an umbrella", "a child holding a balloon", "women", "men in suits",
    ),
    "Bicyclist": (
        "a road bike", "a motorcycle", "a moped", "a motorcyclist", "a bicycle courier",
        "a group of cyclists", "cyclists waiting at the lights",
        "the bike against the railings", "bicycle wheels", "a mountain bike", "motorcycles",
    ),
    NONE: (
        # compounds whose last noun is no CamVid class
        "a toy car", "a car key", "a car-shaped cake", "a bike helmet", "a bike lock",
        "a bike rack", "an exercise bike", "a family tree", "a tree frog", "a sky lantern",
        "a fishing pole", "a ski pole", "a curtain pole", "a wall clock", "wallpaper",
        "a floor lamp", "a house cat", "a houseboat", "a street dog", "a road map",
        "a goal post", "a police horse", "a building block", "a building site",
        "a phone box", "a footstool", "a motorbike helmet", "a traffic report",
        "a bus ticket", "a parking ticket", "a stopwatch", "a sky-blue dress", "a raincoat",
        "a hedgehog", "a fire alarm",
        # animals and things in the scene, with spatial wording
        "a bird on the fence", "a cat on the car", "a dog in the road", "a flock of birds",
        "an aeroplane overhead", "an umbrella on the pavement", "a horse by the road",
        "a seagull", "a lamb", "dogs", "umbrellas",
        # street furniture, indoor things, scenery, materials, text
        "a wooden bench", "a litter bin", "an armchair", "a dishwasher", "a bunk bed",
        "a cliff", "a harbour", "the sea", "a solar eclipse", "fireworks", "a drone",
        "a weather balloon", "glass", "cardboard", "a river bank", "a construction crane",
        "the letters on the shop sign", "the name on the street sign",
    ),
}  # fmt: skip
THRESHOLDS = (0.40, 0.45, 0.50, 0.55, 0.60)


def evaluate(rows: list[dict], threshold: float) -> dict:
    """Precision, recall, false-match rate and loose flags at ``threshold``."""
    accepted = [row for row in rows if row["score"] >= threshold and not row["outside"]]
    correct = [row for row in accepted if row["best"] == row["label"]]
    labelled = [row for row in rows if row["label"] != NONE]
    nones = [row for row in rows if row["label"] == NONE]
    false = [row for row in accepted if row["best"] != row["label"]]
    for row in rows:
        row["is_loose"] = row["loose"][threshold]
    firm = [row for row in accepted if not row["is_loose"]]
    return {
        "threshold": threshold,
        "accepted": len(accepted),
        "precision": round(len(correct) / max(len(accepted), 1), 4),
        "recall": round(sum(row["best"] == row["label"] for row in accepted) / len(labelled), 4),
        "false_match_rate": round(sum(row["label"] == NONE for row in accepted) / len(nones), 4),
        "wrong_class": sum(row["label"] != NONE for row in false),
        "loose_right": sum(row["is_loose"] for row in correct),
        "loose_false": sum(row["is_loose"] for row in false),
        "every_accepted_none_loose": all(
            row["is_loose"] for row in accepted if row["label"] == NONE
        ),
        "precision_unflagged": round(
            sum(row["best"] == row["label"] for row in firm) / max(len(firm), 1), 4
        ),
        "false_matches": [
            [row["phrase"], row["best"], row["score"], row["is_loose"]] for row in false
        ],
    }


def loose_at(matcher: QueryMatcher, phrase: str) -> bool:
    """Whether select would call the match of ``phrase`` loose with this matcher."""
    return loose_reason(matcher.match(phrase), matcher.match) is not None


def score_rows(matcher: QueryMatcher, matchers: dict, phrases: dict) -> list[dict]:
    """One row per phrase: its label, best class and score, and loose flags."""
    rows = []
    for label, texts in phrases.items():
        for phrase in texts:
            scores = matcher.scores(phrase)
            ranked = sorted(scores, key=scores.__getitem__, reverse=True)
            outside = matcher.match(phrase).outside
            rows.append(
                {
                    "phrase": phrase,
                    "label": label,
                    "best": ranked[0],
                    "score": round(scores[ranked[0]], 4),
                    "runner_up": [ranked[1], round(scores[ranked[1]], 4)],
                    "outside": outside[0] if outside else None,
                    "loose": {t: loose_at(matchers[t], phrase) for t in THRESHOLDS},
                }
            )
    return rows


def table_rows(name: str, results: list[dict]) -> list[list]:
    return [
        [
            name, f"{r['threshold']:.2f}" + ("*" if r["threshold"] == DEFAULT_THRESHOLD else ""),
            r["accepted"], r["precision"], r["recall"], r["false_match_rate"],
            r["wrong_class"], f"{r['loose_right']} / {r['loose_false']}",
            "yes" if r["every_accepted_none_loose"] else "no", r["precision_unflagged"],
        ]
        for r in results
    ]  # fmt: skip


def run_variant(
    classes: dict, outside: tuple[str, ...], lists: dict, encoder=None, compound_heads=True
) -> dict:
    """Rows and per-threshold results of one matcher variant on every phrase list."""
    options = {"outside": outside, "compound_heads": compound_heads}
    matcher = QueryMatcher(classes, encoder=encoder, **options)
    matchers = {t: QueryMatcher(classes, t, encoder, **options) for t in THRESHOLDS}
    rows = {name: score_rows(matcher, matchers, phrases) for name, phrases in lists.items()}
    results = {name: [evaluate(rows[name], t) for t in THRESHOLDS] for name in lists}
    return {"rows": rows, "results": results, "encoder": matcher.encoder}


def per_query_ms(classes: dict, outside: tuple[str, ...], phrases: list[str]) -> float:
    """Median milliseconds of one uncached ``match`` (phrase vectors already built): the
    cost a query pays, whole and head readings included."""
    matcher = QueryMatcher(classes, outside=outside)
    matcher.match("warm up")
    times = []
    for phrase in phrases:
        started = time.perf_counter()
        matcher.match(phrase)
        times.append(time.perf_counter() - started)
    return round(1000 * statistics.median(times), 2)


LISTS = {
    "first": PHRASES, "held-out": HELD_OUT, "fresh": FRESH, "judge": JUDGE, "judge2": JUDGE2,
}  # fmt: skip
#: The lists the matcher's choices were made on: the first three for the category outside
#: vocabulary, all four for the compound-head reading. JUDGE2 was scored once, after it.
DEVELOPMENT = ("first", "held-out", "fresh", "judge")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--lists", default=",".join(LISTS), help=f"comma-separated, of {', '.join(LISTS)}"
    )
    parser.add_argument(
        "--no-publish", action="store_true", help="print only; leave results and docs alone"
    )
    args = parser.parse_args()
    lists = {name: LISTS[name] for name in args.lists.split(",")}
    classes = {name: CAMVID_SYNONYMS[name] for name in CAMVID_SYNONYMS}
    shipped = run_variant(classes, CAMVID_OUTSIDE, lists)
    before = run_variant(classes, CAMVID_OUTSIDE, lists, compound_heads=False)
    coco = run_variant(classes, COCO_OUTSIDE, lists)
    plain = run_variant(classes, (), lists)
    counts = {name: Counter(row["label"] for row in shipped["rows"][name]) for name in lists}
    phrases = [f"{p} ." for texts in lists.values() for group in texts.values() for p in group]
    timing = {
        "shipped": per_query_ms(classes, CAMVID_OUTSIDE, phrases),
        "coco_outside_only": per_query_ms(classes, COCO_OUTSIDE, phrases),
    }
    payload = {
        "lists": {n: {"phrases": len(shipped["rows"][n]), "none": counts[n][NONE]} for n in lists},
        "development_lists": [n for n in DEVELOPMENT if n in lists],
        "loose_match_below": LOOSE_MATCH,
        "shipped_threshold": DEFAULT_THRESHOLD,
        "outside_vocabulary": {"shipped": len(CAMVID_OUTSIDE), "coco": len(COCO_OUTSIDE)},
        "per_query_ms_median": timing,
        "results": shipped["results"],
        "results_without_compound_heads": before["results"],
        "results_with_coco_outside_only": coco["results"],
        "results_without_outside_vocabulary": plain["results"],
        "rows": shipped["rows"],
        "machine": machine(),
    }
    headers = [
        "list", "threshold", "accepted", "precision", "recall", "false-match rate",
        "wrong class", "loose: right / false matches", "every accepted 'none' loose",
        "precision of the rest",
    ]  # fmt: skip

    def table(variant: dict) -> str:
        return markdown_table(
            headers, [row for name in lists for row in table_rows(name, variant["results"][name])]
        )

    sizes = ", ".join(
        f"{name}: {len(shipped['rows'][name])} phrases ({counts[name][NONE]} 'none')"
        for name in lists
    )
    lines = [
        "## Query matching (`benchmarks/matcher.py`)",
        "",
        f"Phrase lists ({sizes}), each phrase labelled with the offline model's class it "
        "names or 'none' (near-misses included), matched by the packaged sentence model "
        f"with the shipped outside vocabulary ({len(CAMVID_OUTSIDE)} names: the COCO "
        "classes CamVid lacks and the names of ADE20K, COCO-Stuff, Objects365, LVIS and "
        "Open Images that no CamVid class holds, `clusterlens.models.offline.vocabulary`) "
        "and the surer of whole / head readings, checked against the compound head (the "
        "last noun: 'a bus lane' is a lane). * = the shipped threshold.",
        "",
        "How the lists were written, and what each was used for: *first* together with "
        "the loose-match rule (the first threshold was chosen on it); *held-out* "
        "afterwards, which exposed modifier readings and near-misses; *fresh* after that "
        "and before the head reading and the COCO outside vocabulary were built, to check "
        "them. All three were then looked at while building the matcher, and were the "
        "only lists used to choose the category outside vocabulary, its pruning and the "
        "decision rule. *judge* was written before that change and before the matcher "
        "was run on it (its own commit) and scored once after it (precision 0.913); its "
        "wrong-class matches (compound nouns read by their first word) then led to the "
        "compound-head reading, which was built and measured on all four lists. "
        "*judge2* (232 phrases, many noun compounds in both directions: 'a pedestrian "
        "bridge', 'a car key', 'a traffic warden') was written before that reading and "
        "before the matcher was run on it (its own commit), scored once with the matcher "
        "as it was and once with the reading; nothing was chosen on it. Labels follow "
        "CamVid's 11-class grouping (a wall or bridge is Building, grass Tree, a tram "
        "Car, a motorbike Bicyclist, a car park Pavement) and the lists' conventions "
        "(animals and text on a sign are 'none').",
        "",
        table(shipped),
        "",
        "The matcher before the compound-head reading (whole / head readings only, the "
        "same outside vocabulary):",
        "",
        table(before),
        "",
        "With the compound-head reading and COCO's names only as the outside vocabulary:",
        "",
        table(coco),
        "",
        "With the compound-head reading and no outside vocabulary:",
        "",
        table(plain),
        "",
        f"Median time of one uncached query (whole, head and compound-head readings): "
        f"{timing['shipped']} ms shipped, {timing['coco_outside_only']} ms with COCO only "
        "(the embedding of the query dominates; the phrase vectors are built once per "
        "matcher and kept on disk).",
        "",
    ]
    if "judge2" in lists:
        judged = shipped["results"]["judge2"][THRESHOLDS.index(DEFAULT_THRESHOLD)]
        was = before["results"]["judge2"][THRESHOLDS.index(DEFAULT_THRESHOLD)]
        met = judged["precision"] >= 0.95 and judged["every_accepted_none_loose"]
        lines += [
            "Issue 16's target (precision >= 0.95 at the shipped threshold on a list of at "
            "least 100 phrases the matcher was not built on, every 'none' phrase refused or "
            f"noted as loose), on *judge2*: precision {judged['precision']} (before the "
            f"compound-head reading {was['precision']}), recall {judged['recall']} (before "
            f"{was['recall']}), false-match rate {judged['false_match_rate']} (before "
            f"{was['false_match_rate']}), every accepted 'none' noted as loose: "
            f"{'yes' if judged['every_accepted_none_loose'] else 'no'} (before "
            f"{'yes' if was['every_accepted_none_loose'] else 'no'}). "
            + ("Met." if met else "Not met."),
            "",
        ]  # fmt: skip
    for name in lists:
        at_threshold = shipped["results"][name][THRESHOLDS.index(DEFAULT_THRESHOLD)]
        for phrase, best, score, loose in at_threshold["false_matches"]:
            flag = "noted as loose" if loose else "NOT noted"
            lines.append(f"- {name} list, false match at the shipped threshold: {phrase!r} -> "
                         f"{best} ({score}), {flag}")  # fmt: skip
    if not args.no_publish:
        publish("matcher", payload, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
