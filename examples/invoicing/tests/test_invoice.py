from invoicing import Invoice


def test_empty_invoice_costs_nothing():
    invoice = Invoice(tax_percent=20)
    assert invoice.subtotal() == 0
    assert invoice.tax() == 0


def test_subtotal_sums_the_lines():
    invoice = Invoice(tax_percent=20)
    invoice.add("pen", 3, 150)
    invoice.add("pad", 1, 399)
    assert invoice.subtotal() == 849


def test_tax_on_round_amounts():
    invoice = Invoice(tax_percent=20)
    invoice.add("book", 1, 1000)
    assert invoice.tax() == 200


def test_tax_rounds_half_up():
    invoice = Invoice(tax_percent=10)
    invoice.add("gum", 1, 125)  # 12.5 cents of tax
    assert invoice.tax() == 13


def test_summary_shows_rounded_tax():
    invoice = Invoice(tax_percent=19)
    invoice.add("tea", 2, 499)  # 998 * 19% = 189.62 cents
    assert invoice.summary() == "subtotal 9.98 + tax 1.90 = 11.88"


def test_format_cents():
    from invoicing.money import format_cents

    assert format_cents(12345) == "123.45"
    assert format_cents(-5) == "-0.05"
