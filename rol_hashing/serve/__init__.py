"""``rol-hashing serve``: a trained run's gallery searched from an HTTP API and a web page.

``service`` loads a run's model, index and gallery record once and answers searches
exactly as ``rol-hashing search`` does; ``app`` is the Flask application over one run or
two (``--compare``).
"""
