"""A small hostile library for the browser: markup in every name, tag, title and body the app shows.

Every payload, had it been rendered as markup, would make the page load something from example.com (an image, a
frame, a style sheet, a redirect), run a handler, or show a bold marker word (EvilCam, EvilBand, ...). File names
cannot hold '/', so remote URLs in names are written `\\\\example.com\\x.png`: a browser resolves a backslash like
a slash in http(s) URLs, so `<img src=\\\\example.com\\x.png>` loads http://example.com/x.png.

`make_hostile_library(root)` writes one root per kind (the images and music roots have markup in their own folder
names, so every path and the Settings roots list carry it too) and returns what the test selects and looks for.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from tests.media import write_jpeg, write_mp3, write_png, write_text, write_video, write_wav

# Words that appear in the DOM inside <b>/<strong>/<em> only if library markup was rendered.
MARKERS = ("EvilCam", "EvilBand", "EvilRoot", "EvilAlbum", "EvilVideo", "EvilDoc", "EvilTxt", "bold", "strongname")

IMAGES_ROOT = "<svg onload=alert(1)> photos"  # the images root itself: every image path carries it
MUSIC_ROOT = "<b>EvilRoot music"  # no closing tag: a name cannot hold '/'
IMAGE_FOLDER = "<iframe src=\\\\example.com\\folder-frame>"  # a sub-folder inside the images root

IMAGE_NAMES = (
    "<img src=\\\\example.com\\name-pixel.png>.png",
    "<img src=x onerror=alert(1)>.png",
    "![p](\\\\\\\\example.com\\md-name.png) **strongname**.jpg",
    "<a href=\\\\example.com\\exif-link>exif.jpg",  # its EXIF carries markup too
)
IMAGE_IN_FOLDER = "<link rel=stylesheet href=\\\\example.com\\name.css>.jpg"
EXIF_MAKE = "<b>EvilCam</b>"
EXIF_MODEL = '<img src="http://example.com/exif-pixel.png">'
EXIF_ARTIST = "<style>*{background:url(http://example.com/exif-css.png)}</style>"
BAD_IMAGE = "<img src=\\\\example.com\\bad.png>.jpg"

MUSIC_NAME = "<b>bold [x](http:\\\\example.com\\a).mp3"
ID3_TITLE = '<img src="http://example.com/id3-pixel.png">'
ID3_ARTIST = "<b>EvilBand</b>"
ID3_ALBUM = "<iframe src=\"http://example.com/album-frame\"></iframe><b>EvilAlbum</b>"
MUSIC_NAME_2 = "<svg><image href=\\\\example.com\\svg-name.png><\\svg>.wav"
ID3_TITLE_2 = "**bold** ![t](http://example.com/id3-md.png)"
ID3_ARTIST_2 = "<i>EvilBand</i>"
BAD_MUSIC = "<img src=\\\\example.com\\bad-audio.png>.mp3"

MD_NAME = "<img src=\\\\example.com\\md-file.png>.md"
MD_TITLE = '<img src="http://example.com/title-pixel.png">'
MD_BODY = f"""{MD_TITLE}

# <b>EvilDoc</b> heading

![p](http://example.com/md-pixel.png)

![ref image][ref]

<iframe src="http://example.com/frame"></iframe>

<link rel=stylesheet href=http://example.com/s.css>

<div style="background:url(http://example.com/css.png)">styled</div>

<style>@import url(http://example.com/import.css); body {{ background: url(http://example.com/style.png) }}</style>

<script>window.__pwned = 'script'</script>

<img src=x onerror="window.__pwned = 'onerror'">

<a href="javascript:window.__pwned = 'javascript-link'">a javascript link</a>

<video src="http://example.com/video.mp4" autoplay></video> <audio src="http://example.com/audio.mp3" autoplay></audio>

<form action="http://example.com/form"><input type=image src="http://example.com/input.png"></form>

<table background="http://example.com/table.png"><tr><td>cell</td></tr></table>

A plain link the sanitiser keeps, inert until clicked: [a link](http://example.com/link).

Some ordinary text about gardens, harbours and the sea, so the document has words to embed.

[ref]: http://example.com/ref.png
"""

HTML_NAME = "<iframe src=\\\\example.com\\html-name>.html"
HTML_TITLE = "<img src=http://example.com/html-title.png>"
HTML_BODY = """<!doctype html>
<html><head>
<title>&lt;img src=http://example.com/html-title.png&gt;</title>
<base href="http://example.com/">
<meta http-equiv="refresh" content="0;url=http://example.com/">
<link rel="stylesheet" href="http://example.com/head.css">
</head><body>
<h1>Hostile <b>EvilDoc</b> page</h1>
<p>A paragraph about the harbour at dawn and the boats coming back with the catch.</p>
<img srcset="http://example.com/srcset.png 2x">
<picture><source srcset="http://example.com/source.png"><img src="relative-pixel.png"></picture>
<object data="http://example.com/o"></object>
<embed src="http://example.com/embed">
<svg><image href="http://example.com/svg.png"/><use href="http://example.com/use.svg#x"/></svg>
<math><mi xlink:href="http://example.com/math">m</mi></math>
<iframe srcdoc="<img src=http://example.com/srcdoc.png>"></iframe>
<body background="http://example.com/bg.png" onload="window.__pwned = 'body-onload'">
<p onclick="window.__pwned = 'onclick'" style="background-image:url(http://example.com/p.png)">styled</p>
</body></html>
"""

TXT_NAME = "<body onload=alert(1)>.txt"
TXT_BODY = ("<img src=http://example.com/txt-pixel.png> <b>EvilTxt</b>\n"
            "Plain text about the weather in spring, the garden and the compost.\n")
BAD_TEXT = "<img src=\\\\example.com\\binary.png>.txt"

VIDEO_NAME = "<img src=\\\\example.com\\video-name.png>.mp4"
VIDEO_NAME_2 = "[v](\\\\\\\\example.com\\v) <b>EvilVideo.mkv"  # MPEG-4 in Matroska: prepared for the browser
BAD_VIDEO = "<img src=\\\\example.com\\bad-video.png>.mp4"

ADD_ROOT_TYPED = "<img src=\\\\example.com\\typed-root.png>"  # typed into Settings → Folder, then Add


@dataclass
class HostileLibrary:
    images: Path
    music: Path
    text: Path
    videos: Path
    image_names: list[str] = field(default_factory=list)  # every valid image's file name
    plain_images: list[Path] = field(default_factory=list)
    rated: dict[str, list[Path]] = field(default_factory=dict)  # kind → files to rate before the walk
    bad: dict[str, str] = field(default_factory=dict)  # kind → the damaged file's name (listed as skipped)


def _hostile_exif_jpeg(path: Path) -> Path:
    image = Image.new("RGB", (80, 60), (150, 90, 30))
    exif = Image.Exif()
    exif[0x010F] = EXIF_MAKE  # Make
    exif[0x0110] = EXIF_MODEL  # Model
    exif[0x013B] = EXIF_ARTIST  # Artist
    exif[0x010E] = "![d](http://example.com/exif-md.png)"  # ImageDescription
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="JPEG", exif=exif)
    return path


def _truncated(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[: max(1, len(data) // 10)])
    return path


def make_hostile_library(root: Path) -> HostileLibrary:
    images, music, text, videos = root / IMAGES_ROOT, root / MUSIC_ROOT, root / "text", root / "videos"
    library = HostileLibrary(images, music, text, videos)

    colours = [(200, 40, 40), (40, 200, 40), (40, 40, 200), (200, 200, 40)]
    made = [
        write_png(images / IMAGE_NAMES[0], color=colours[0], size=(80, 60)),
        write_png(images / IMAGE_NAMES[1], color=colours[1], size=(80, 60)),
        write_jpeg(images / IMAGE_NAMES[2], color=colours[2], size=(80, 60)),
        _hostile_exif_jpeg(images / IMAGE_NAMES[3]),
        write_jpeg(images / IMAGE_FOLDER / IMAGE_IN_FOLDER, color=colours[3], size=(80, 60)),
    ]
    library.plain_images = [write_jpeg(images / f"plain {index:02d}.jpg", color=(60 * index % 256, 120, 90),
                                       size=(80, 60)) for index in range(3)]
    library.image_names = [path.name for path in made]
    whole = write_jpeg(root / "scratch.jpg", size=(200, 150)).read_bytes()
    (root / "scratch.jpg").unlink()
    _truncated(images / BAD_IMAGE, whole)
    library.bad["images"] = BAD_IMAGE
    library.rated["images"] = [*made, *library.plain_images]

    track = write_mp3(music / MUSIC_NAME, seconds=30.0, freq=330,  # long: still playing when Why is pressed
                      tags={"title": ID3_TITLE, "artist": ID3_ARTIST, "album": ID3_ALBUM, "genre": "<b>bold</b>"})
    track_2 = write_wav(music / MUSIC_NAME_2, seconds=30.0, freq=550,
                        tags={"title": ID3_TITLE_2, "artist": ID3_ARTIST_2})
    (music / BAD_MUSIC).write_bytes(bytes(range(256)) * 40)
    library.bad["music"] = BAD_MUSIC
    library.rated["music"] = [track, track_2]

    md_doc = write_text(text / MD_NAME, MD_BODY)
    html_doc = write_text(text / HTML_NAME, HTML_BODY)
    txt_doc = write_text(text / TXT_NAME, TXT_BODY)
    (text / BAD_TEXT).write_bytes(b"\x00\x01binary\x00" * 200)
    library.bad["text"] = BAD_TEXT
    library.rated["text"] = [md_doc, html_doc, txt_doc]

    video = write_video(videos / VIDEO_NAME, frames=150, color=(40, 160, 40))  # 15 s: still playing for Why
    video_2 = write_video(videos / VIDEO_NAME_2, frames=150, codec="mpeg4", color=(160, 40, 40))
    good = write_video(root / "scratch.mp4", frames=40).read_bytes()
    (root / "scratch.mp4").unlink()
    _truncated(videos / BAD_VIDEO, good)
    library.bad["videos"] = BAD_VIDEO
    library.rated["videos"] = [video, video_2]
    names = [IMAGES_ROOT, MUSIC_ROOT, IMAGE_FOLDER, *IMAGE_NAMES, IMAGE_IN_FOLDER, BAD_IMAGE, MUSIC_NAME, MUSIC_NAME_2,
             BAD_MUSIC, MD_NAME, HTML_NAME, TXT_NAME, BAD_TEXT, VIDEO_NAME, VIDEO_NAME_2, BAD_VIDEO]
    assert not [name for name in names if "/" in name]  # a '/' would make a folder, not a name
    return library
