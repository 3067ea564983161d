"""The GPU backend: Jittor's set-up and the products and kernels the models run on.

Nothing here imports from core/, models/, render/ or pipeline/.
"""
