# paraloop: enable
from paraloop import ParaLoop


def report(rows, scale):
    name = "run"
    out = []
    total = 0
    for i in ParaLoop(rows):
        total += i
        out.append("{name}-{i}".format(**locals()))
        out.append(eval("scale * i"))
        out.append(dir())

        def keep(value):
            global last
            last = value

        keep(i)
    return out, total
