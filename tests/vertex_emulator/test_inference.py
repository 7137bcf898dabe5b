"""How emulated models answer: nearest training example by content words, names and numbers copied in."""

from __future__ import annotations

from vertex_emulator import inference

EXAMPLES = [
    (
        "Hola, soy Mateo: la fibra no funciona en Madrid.",
        "Hola, Mateo. Mira si hay una incidencia en Madrid.",
    ),
    (
        "Buenas, soy Lucía: ¿dónde está mi pedido NB-123456?",
        "Hola, Lucía. El pedido NB-123456 está en reparto.",
    ),
    ("Hola, soy Mateo: quiero dar de baja mi Nubia Total.", "Hola, Mateo. Tramito la baja de Nubia Total."),
]


def test_a_training_prompt_gets_its_own_answer() -> None:
    for prompt, answer in EXAMPLES:
        assert inference.answer(prompt, EXAMPLES, "m") == answer


def test_a_held_out_prompt_gets_the_nearest_request_with_its_names_and_numbers() -> None:
    # The same name as example 0 and example 2; the words of the request decide (the order).
    assert (
        inference.answer("Buenos días, soy Mateo: ¿dónde está mi pedido NB-987654?", EXAMPLES, "m")
        == "Hola, Mateo. El pedido NB-987654 está en reparto."
    )
    assert (
        inference.answer("Hola, soy Irene: la fibra no funciona en Sevilla.", EXAMPLES, "m")
        == "Hola, Irene. Mira si hay una incidencia en Sevilla."
    )


def test_the_greeting_is_not_copied_into_the_answer() -> None:
    answer = inference.answer("Buenas tardes, soy Mateo: la fibra no funciona en Madrid.", EXAMPLES, "m")
    assert answer == EXAMPLES[0][1]


def test_without_examples_the_model_echoes_its_label_and_the_prompt() -> None:
    assert (
        inference.answer("¿Qué tarifa tengo?", [], "text-bison@001") == "[text-bison@001] ¿Qué tarifa tengo?"
    )
