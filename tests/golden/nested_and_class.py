# paraloop: enable
from paraloop import ParaLoop as PL, Variable, aggregation_strategies as s


class Table:
    for column in PL(range(3)):
        last = column

    def rows(self, n):
        out = Variable([], aggregation_strategy=s.Concatenate)
        for r in PL(range(n)):
            row = Variable([], aggregation_strategy=s.Concatenate)
            for c in PL(range(self.width)):
                row.append((r, c))
            out.append(row.value)
            if r > 10:
                break
        return out.value
