"""The browser as a runtime: onnxruntime-web's pinned files and headless Chromium driven by Playwright."""
