"""The evaluation harness: suites, the CYCLE protocol per round, metrics, reports.

    cyclefix bench humaneval|mbpp|mbpp+|folder PATH --model M   run and score a suite
    cyclefix bench compare A B                                  two runs side by side
    cyclefix bench bugs --out DIR                               MBPP mutants as a folder suite

Frontend rule: tasks run through cyclefix.refine's public API, in the product's own sandbox.
"""
