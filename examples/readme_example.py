# paraloop: enable
"""The example at the top of the README: a sum and a dict, built in parallel.

Run it with ``python -m paraloop examples/readme_example.py``.
"""

from paraloop import ParaLoop, Variable, aggregation_strategies

counter = Variable(3, aggregation_strategy=aggregation_strategies.Sum)
dictionary = Variable({}, aggregation_strategy=aggregation_strategies.Concatenate)

for i in ParaLoop(range(0, 100), num_processes=8):
    counter += i
    dictionary[f"key_{i}"] = "Hi!"

print(counter)  # 4953, exactly what the plain loop gives
print(dictionary)  # {'key_0': 'Hi!', ..., 'key_99': 'Hi!'} in iteration order
