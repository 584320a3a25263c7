"""Convnet Workbench engine: data, cache, augmentation, models, training, evaluation, explanations.

Importable and usable without Streamlit.
"""
