"""The tag -> taxonomy mapping table: Sakuga-42M's six axes, their classes and labels, and the tags that vote.

Axis names, class names and labels are the released parquet's (notes/sakuga.md §3); the class names are Danbooru
tags. Which further tags vote for a class, and with what weight, is our choice (the release never published its
rule): the class's own tag has weight 1.0, close synonyms 0.8-0.9, weaker evidence (a tag that usually co-occurs,
e.g. `moon` for night) 0.3-0.6. `taxonomy.py` sums weight x tagger confidence per class and keeps the best class
above a minimum support. Edit the rows here (or pass `table=` to the annotator) to change the mapping; nothing else
encodes it.

Each row: axis, class name, label, {tag: weight}. Order within an axis is label order; it also breaks exact ties.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class TaxonomyClass:
    axis: str  # "Time", "Venue", ... -> columns Taxonomy_<axis>, Taxonomy_<axis>_label
    name: str
    label: int
    tags: MappingProxyType  # tag -> weight


OTHERS = ("Others", -1)
AXES = ("Time", "Venue", "Media", "Filming", "Composition", "Character")

_ROWS: tuple[tuple[str, str, int, dict[str, float]], ...] = (
    ("Time", "daylight", 0, {"daylight": 1.0, "day": 0.9, "sunlight": 0.6, "blue_sky": 0.5, "light_rays": 0.3}),
    (
        "Time",
        "night",
        1,
        {"night": 1.0, "night_sky": 0.9, "starry_sky": 0.6, "moon": 0.5, "full_moon": 0.5, "moonlight": 0.6},
    ),
    (
        "Time",
        "sunset",
        2,
        {"sunset": 1.0, "evening": 0.9, "twilight": 0.9, "sunrise": 0.8, "orange_sky": 0.6, "gradient_sky": 0.3},
    ),
    (
        "Venue",
        "outdoors",
        0,
        {
            "outdoors": 1.0,
            "sky": 0.5,
            "cloud": 0.5,
            "tree": 0.4,
            "nature": 0.6,
            "city": 0.6,
            "street": 0.6,
            "road": 0.5,
            "field": 0.5,
            "grass": 0.4,
            "ocean": 0.5,
            "beach": 0.6,
            "forest": 0.6,
            "mountain": 0.5,
            "cityscape": 0.6,
        },
    ),
    (
        "Venue",
        "indoors",
        1,
        {
            "indoors": 1.0,
            "room": 0.7,
            "bedroom": 0.8,
            "classroom": 0.8,
            "kitchen": 0.8,
            "hallway": 0.7,
            "ceiling": 0.6,
            "indoor": 0.9,
            "window": 0.3,
            "curtains": 0.4,
            "bed": 0.4,
            "desk": 0.4,
        },
    ),
    (
        "Media",
        "sketch",
        0,
        {"sketch": 1.0, "lineart": 0.8, "rough": 0.6, "traditional_media": 0.5, "monochrome": 0.4, "greyscale": 0.4},
    ),
    (
        "Media",
        "color_trace",
        1,
        {"color_trace": 1.0, "colored_pencil_(medium)": 0.7, "partially_colored": 0.6, "limited_palette": 0.3},
    ),
    (
        "Filming",
        "looking_at_viewer",
        0,
        {"looking_at_viewer": 1.0, "eye_contact": 0.8, "facing_viewer": 0.7},
    ),
    (
        "Filming",
        "looking_away",
        1,
        {
            "looking_away": 1.0,
            "looking_to_the_side": 0.9,
            "looking_back": 0.8,
            "looking_down": 0.7,
            "looking_up": 0.7,
            "looking_afar": 0.8,
            "facing_away": 0.8,
            "profile": 0.6,
        },
    ),
    ("Composition", "full_body", 0, {"full_body": 1.0, "wide_shot": 0.6, "standing": 0.3}),
    ("Composition", "upper_body", 1, {"upper_body": 1.0, "portrait": 0.9, "close-up": 0.8, "cowboy_shot": 0.6}),
    ("Composition", "lower_body", 2, {"lower_body": 1.0, "head_out_of_frame": 0.6, "feet": 0.4, "legs": 0.4}),
    (
        "Composition",
        "out_of_frame",
        3,
        {"out_of_frame": 1.0, "face_out_of_frame": 0.8, "eyes_out_of_frame": 0.8, "cropped": 0.4},
    ),
    ("Character", "no_humans", 0, {"no_humans": 1.0, "scenery": 0.3}),
    ("Character", "solo", 1, {"solo": 1.0, "1girl": 0.8, "1boy": 0.8, "1other": 0.8, "solo_focus": 0.6}),
    (
        "Character",
        "multiple",
        2,
        {
            "multiple_girls": 1.0,
            "multiple_boys": 1.0,
            "multiple_others": 1.0,
            "2girls": 0.9,
            "3girls": 0.9,
            "4girls": 0.9,
            "5girls": 0.9,
            "6+girls": 0.9,
            "2boys": 0.9,
            "3boys": 0.9,
            "4boys": 0.9,
            "5boys": 0.9,
            "6+boys": 0.9,
            "2others": 0.9,
            "group": 0.7,
            "crowd": 0.7,
        },
    ),
)

TABLE: tuple[TaxonomyClass, ...] = tuple(
    TaxonomyClass(axis, name, label, MappingProxyType(dict(tags))) for axis, name, label, tags in _ROWS
)
