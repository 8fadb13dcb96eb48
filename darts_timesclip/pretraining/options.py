"""The pretraining objectives' names, without torch: the command lines build their parsers from them."""

#: The temporal objectives of the numeric tower, besides the contrastive loss that every one of them has.
OBJECTIVES = ("next-patch", "masked", "contrastive-only")
#: ``pretrain_backbone``'s default objective.
DEFAULT_OBJECTIVE = "next-patch"
