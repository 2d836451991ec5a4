"""The data-quality part of the report page: suspects, look-alike label pairs and
near-duplicate groups as pictures, the label pairs the neighbours mix up, and one thumbnail
per label."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from html import escape

STYLE = """
.gallery { display: flex; flex-wrap: wrap; gap: .35rem; align-items: flex-start; }
figure.thumb { margin: 0; width: 76px; font-size: .68rem; line-height: 1.1; }
figure.thumb img { width: 72px; height: 72px; object-fit: contain; display: block;
border: 2px solid #ddd; border-radius: 3px; background: #fff; }
figure.thumb.suspect img { border-color: #d1495b; }
figure.thumb.other img { border-color: #4c956c; }
figure.thumb figcaption { overflow-wrap: anywhere; }
.missing { display: flex; width: 72px; height: 72px; align-items: center;
justify-content: center; border: 2px dashed #ccc; color: #999; }
.case { border-bottom: 1px solid #eee; padding: .4rem 0; }
.case p { margin: .1rem 0 .3rem; }
"""
SHOWN_SUSPECTS = 30
SHOWN_GROUPS = 20
SHOWN_GROUP_IMAGES = 8
SHOWN_PAIRS = 12


def figure(path: str, caption: str, thumbs: Mapping[str, bytes], kind: str = "") -> str:
    """One image as a captioned thumbnail (the full path on hover), or a placeholder."""
    title = escape(path)
    data = thumbs.get(path)
    picture = (f'<img src="data:image/jpeg;base64,{base64.b64encode(data).decode()}" '
               f'alt="{title}" title="{title}" class="thumb">' if data is not None
               else f'<span class="missing" title="{title}">?</span>')
    return (f'<figure class="thumb {kind}">{picture}'
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def shown_paths(quality: Mapping, examples: Mapping[str, str] | None = None) -> list[str]:
    """Every image the section shows, and the `examples` (label -> path) of the label
    gallery, to fetch their thumbnails in one go."""
    paths = []
    for suspect in quality.get("suspected_mislabels", [])[:SHOWN_SUSPECTS]:
        paths += [suspect["path"], *suspect.get("neighbours", [])]
    for group in quality.get("near_duplicates", [])[:SHOWN_GROUPS]:
        paths += group["paths"][:SHOWN_GROUP_IMAGES]
    for pair in quality.get("look_alike_pairs", [])[:SHOWN_PAIRS]:
        paths += [path for side in pair["sides"] for path in side["examples"]]
    return paths + list((examples or {}).values())


def suspects(quality: Mapping, thumbs: Mapping[str, bytes], labels: Mapping[str, str]) -> str:
    """Each suspect beside its nearest neighbours (captioned with their `labels`, path ->
    stored label): red, the image; green, neighbours carrying the label they suggest."""
    counts, settings = quality["counts"], quality["settings"]
    listed = quality.get("suspected_mislabels", [])
    finder = settings.get("finder", {})
    parts = [f"<p><b>{counts['suspected_mislabels']}</b> of the {counts['images']} labelled "
             "images look filed under the wrong label"
             + (f" (the top {min(SHOWN_SUSPECTS, len(listed))} below, "
                f"{len(listed)} in report/data_quality.json)" if listed else "")
             + f". Score: the mean of two pieces of evidence for one other label, each beyond "
             f"what the other images of its folder show: a linear model's out-of-fold belief "
             f"({finder.get('folds', '?')} folds, each image scored by a model that never saw "
             f"it) minus its belief in the given label, and the share of its "
             f"{settings['neighbours']} nearest neighbours ({settings['metric']}, PCA) under "
             f"that label; suspects score {settings['min_score']:.2f} or more. Labels whose "
             "images all look somewhat alike are listed as pairs below (a suspect between "
             "such a pair is marked).</p>"]
    for suspect in listed[:SHOWN_SUSPECTS]:
        gallery = [figure(suspect["path"], suspect["label"], thumbs, "suspect")]
        gallery += [figure(path, labels.get(path, ""), thumbs,
                           "other" if labels.get(path) == suspect["neighbour_label"] else "")
                    for path in suspect.get("neighbours", [])]
        parts.append(
            f"<div class='case suspect-case'><p><code>{escape(suspect['path'])}</code>: filed "
            f"under <b>{escape(suspect['label'])}</b>, looks like "
            f"<b>{escape(suspect['neighbour_label'])}</b> (score {suspect['score']:.2f}"
            + (f"; model {suspect['model_probability']:.0%} vs "
               f"{suspect['label_probability']:.0%} for its label; "
               f"{suspect['neighbour_share']:.0%} of its neighbours"
               if "model_probability" in suspect else "")
            + ")" + (" <span class='warn'>between look-alike labels</span>"
                     if suspect.get("look_alike_pair") else "") + "</p>"
            f"<div class='gallery'>{''.join(gallery)}</div></div>")
    return "\n".join(parts)


def near_duplicates(quality: Mapping, thumbs: Mapping[str, bytes],
                    labels: Mapping[str, str]) -> str:
    """Each group of near-copies as a row of thumbnails (captioned with their `labels`),
    with its flags."""
    counts, settings = quality["counts"], quality["settings"]
    groups = quality.get("near_duplicates", [])
    parts = [f"<p>Images within distance {settings['duplicate_distance']} of another "
             f"({settings['metric']}, PCA components), chained into groups: "
             f"<b>{counts['near_duplicate_groups']}</b> groups of "
             f"{counts['near_duplicate_images']} images; "
             f"<span class='{'warn' if counts['groups_across_labels'] else ''}'>"
             f"{counts['groups_across_labels']} span labels</span>, "
             f"<span class='{'warn' if counts['groups_across_splits'] else ''}'>"
             f"{counts['groups_across_splits']} span the Training and Test splits "
             "(leakage)</span>.</p>"]
    for group in groups[:SHOWN_GROUPS]:
        flags = [flag for flag, on in (("spans labels", group["spans_labels"]),
                                       ("spans splits", group["spans_splits"])) if on]
        shown = group["paths"][:SHOWN_GROUP_IMAGES]
        more = group["size"] - len(shown)
        gallery = "".join(figure(path, labels.get(path, ""), thumbs) for path in shown)
        parts.append(
            f"<div class='case duplicate-case'><p>{group['size']} images, "
            f"{escape(', '.join(group['labels']))}"
            + (f" <span class='warn'>{escape(', '.join(flags))}</span>" if flags else "")
            + (f" ({more} more in report/data_quality.json)" if more > 0 else "")
            + f"</p><div class='gallery'>{gallery}</div></div>")
    return "\n".join(parts)


def look_alike_pairs(quality: Mapping, thumbs: Mapping[str, bytes]) -> str:
    """Each pair of labels whose images believe each other's label, with the images of each
    side that believe the other most: a property of the classes, not a mislabel each."""
    pairs = quality.get("look_alike_pairs", [])
    share = quality["settings"].get("finder", {}).get("look_alike_share", 0.1)
    if not pairs:
        return ("<p>No pair of labels whose images believe each other's label by "
                f"{share:.0%} or more on average.</p>")
    parts = [f"<p><b>{len(pairs)}</b> pairs of labels whose images believe the other label "
             f"by {share:.0%} or more on average (out-of-fold model), most alike first"
             + (f"; the first {SHOWN_PAIRS} with the images of each side that look most like "
                "the other" if len(pairs) > SHOWN_PAIRS else
                "; with the images of each side that look most like the other") + ".</p>"]
    for pair in pairs[:SHOWN_PAIRS]:
        left, right = pair["sides"]
        gallery = [figure(path, side["label"], thumbs)
                   for side in (left, right) for path in side["examples"]]
        parts.append(
            f"<div class='case pair-case'><p><b>{escape(left['label'])}</b> &harr; "
            f"<b>{escape(right['label'])}</b>: overlap {pair['overlap']:.2f}; the model gives "
            f"{left['given_to_other']} of {left['images']} and {right['given_to_other']} of "
            f"{right['images']} to the other label"
            + (f"; {len(pair['flagged'])} of the suspects lie between them"
               if pair.get("flagged") else "") + "</p>"
            f"<div class='gallery'>{''.join(gallery)}</div></div>")
    return "\n".join(parts)


def confusion_table(rows: Sequence[Mapping]) -> str:
    """The label pairs the neighbours mix up most."""
    if not rows:
        return "<p>The neighbours' majority agrees with every image's label.</p>"
    body = "".join(f"<tr><td>{escape(r['label'])}</td><td>{escape(r['neighbours_say'])}</td>"
                   f"<td class='num'>{r['images']}</td></tr>" for r in rows)
    return ("<table><tr><th>label</th><th>its neighbours mostly say</th><th>images</th></tr>"
            f"{body}</table>")


def label_gallery(examples: Mapping[str, str], counts: Mapping[str, int],
                  thumbs: Mapping[str, bytes]) -> str:
    """One thumbnail per label, with its image count: what each name stands for."""
    return "<div class='gallery'>" + "".join(
        figure(path, f"{label} ({counts.get(label, 0)})", thumbs)
        for label, path in sorted(examples.items())) + "</div>"


def findings(quality: Mapping, thumbs: Mapping[str, bytes], labels: Mapping[str, str]) -> str:
    """What a reader acts on, shown first: suspects, look-alike pairs, confusions; `labels`
    maps each image's path to its stored label."""
    return "\n".join([
        "<h2 id='suspects'>Suspected mislabels</h2>", suspects(quality, thumbs, labels),
        "<h2 id='look-alike'>Look-alike labels</h2>", look_alike_pairs(quality, thumbs),
        "<h2>Labels the neighbours mix up</h2>",
        confusion_table(quality.get("confusions", [])),
    ])


def duplicates(quality: Mapping, thumbs: Mapping[str, bytes], labels: Mapping[str, str]
               ) -> str:
    """The near-duplicate groups, with their heading."""
    return "\n".join(["<h2>Near-duplicates</h2>", near_duplicates(quality, thumbs, labels)])


def section(quality: Mapping, thumbs: Mapping[str, bytes], labels: Mapping[str, str]) -> str:
    """The whole data-quality part: `findings`, then `duplicates`."""
    return "\n".join([findings(quality, thumbs, labels), duplicates(quality, thumbs, labels)])
