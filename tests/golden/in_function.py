# paraloop: enable
import paraloop as pl


def outer(scale):
    def first_large(values, limit):
        for index, (value, *rest) in pl.ParaLoop(enumerate(values)):
            scaled = value * scale
            if scaled > limit:
                return index
        return None

    return first_large
