"""Development tools: the local stack, the demo, the console views, development keys and
certificates, benchmarks and chaos, code generation. Run from the checkout with
``python -m devkit``; never part of the production wheel or image, and never imported
by anything that runs in production."""
