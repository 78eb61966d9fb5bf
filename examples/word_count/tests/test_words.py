from words import most_common, tokenize, word_counts


def test_tokenize():
    assert tokenize("It's a Test, a test!") == ["it's", "a", "test", "a", "test"]


def test_word_counts():
    assert word_counts("the cat and the hat") == {"the": 2, "cat": 1, "and": 1, "hat": 1}


def test_empty_text():
    assert word_counts("") == {}


def test_most_common():
    assert most_common("b a b c a b", 2) == [("b", 3), ("a", 2)]
