"""nnU-Net trainers that train on the recipe's maps, selected with ``nnUNetv2_train ... -tr NAME``.

nnU-Net finds them where the ``nnUNet_extTrainer`` environment variable points (nnU-Net 2.8+):
``export nnUNet_extTrainer="$(unetweights nnunet-path)"``. nnU-Net itself is not modified.
"""
