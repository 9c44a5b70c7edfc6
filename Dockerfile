# Anagnorisis in a CUDA-capable image. The GPU is used when the NVIDIA container toolkit is present, else the CPU.
FROM nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04

RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-pip \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 anagnorisis \
 && mkdir -p /mnt/state /mnt/media/images /mnt/media/music /mnt/media/text /mnt/media/videos /opt/anagnorisis \
 && chown -R anagnorisis:anagnorisis /mnt/state /opt/anagnorisis

WORKDIR /opt/anagnorisis
COPY requirements.txt .
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir -r requirements.txt
COPY --chown=anagnorisis:anagnorisis . .

ENV PATH=/opt/venv/bin:$PATH \
    ANAGNORISIS_CONTAINER=1 \
    ANAGNORISIS_HOST=0.0.0.0 \
    ANAGNORISIS_PORT=7860 \
    ANAGNORISIS_DATA_DIR=/mnt/state \
    ANAGNORISIS_IMAGES_ROOTS=/mnt/media/images \
    ANAGNORISIS_MUSIC_ROOTS=/mnt/media/music \
    ANAGNORISIS_TEXT_ROOTS=/mnt/media/text \
    ANAGNORISIS_VIDEOS_ROOTS=/mnt/media/videos \
    HF_HOME=/mnt/state/models \
    GRADIO_ANALYTICS_ENABLED=False \
    HF_HUB_DISABLE_TELEMETRY=1

USER anagnorisis
EXPOSE 7860
CMD ["python3", "app.py"]
