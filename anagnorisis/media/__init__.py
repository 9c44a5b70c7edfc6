"""What the browser is given of a file: playable audio and video, text views, image previews."""
