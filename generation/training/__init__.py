"""Training data beyond the joke corpus: general Russian text for the GPT to learn the language.

The shipped GPT read only the joke corpus, mostly dialogue, and a fluent reader finds its jokes
mostly meaningless; ``literature`` turns the public-domain prose and poetry corpus into
pieces in the jokes' row format, ``mix`` puts them next to the joke training split for continued
training, and ``export_state`` hands a run's last weights to the next phase.
"""
