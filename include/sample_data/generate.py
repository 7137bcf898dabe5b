"""Generate the Spanish sample dataset of ARIA-text (customer support of a fictional telecom).

Deterministic: the same script writes byte-identical files on any machine. Run it after editing
the templates and commit its output:

    .venv/bin/python include/sample_data/generate.py

The output mirrors the GCS layout (`<bucket>/<prefix>/raw/v=<version>/part-NNN.jsonl`), so the
folder `include/sample_data/gcs/` seeds fake-gcs-server as is and the demo uploads a version from it.
Each dataset version closes every answer with its own signature line, so a test can tell which
version a tuned model was trained on.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUCKET = "aria-datasets"
PREFIX = "aria-text"
ROOT = HERE / "gcs" / BUCKET / PREFIX / "raw"
PARTS = 2  # several files make one dataset version


@dataclass(frozen=True)
class Version:
    name: str  # the `v=` value: the logical date (ds) of the weekly run that trains on it
    examples: int
    seed: int
    signature: str


VERSIONS = (
    Version("2025-06-01", 300, 1, "Un saludo, ARIA (Nubia Telecom)."),
    Version("2025-06-08", 320, 2, "Quedo a tu disposición. ARIA, atención al cliente de Nubia."),
    Version("2025-06-15", 340, 3, "Gracias por confiar en Nubia. ARIA, tu asistente."),
)

NOMBRES = [
    "Lucía",
    "Javier",
    "Carmen",
    "Andrés",
    "Marta",
    "Pablo",
    "Elena",
    "Diego",
    "Sofía",
    "Raúl",
    "Nuria",
    "Álvaro",
    "Irene",
    "Sergio",
    "Paula",
    "Tomás",
    "Alba",
    "Hugo",
    "Rocío",
    "Mateo",
]
CIUDADES = [
    "Madrid",
    "Sevilla",
    "Valencia",
    "Bilbao",
    "Zaragoza",
    "Málaga",
    "Murcia",
    "Valladolid",
    "Granada",
    "A Coruña",
    "Salamanca",
    "Alicante",
    "Palma",
    "Oviedo",
    "Cádiz",
    "Toledo",
]
TARIFAS = {
    "Nubia Básica": 19,
    "Nubia Fibra 300": 32,
    "Nubia Fibra 1 Gb": 45,
    "Nubia Total": 59,
    "Nubia Móvil 25 GB": 12,
    "Nubia Móvil Ilimitada": 25,
}
DISPOSITIVOS = ["iPhone 15", "Galaxy S24", "Pixel 8", "Xiaomi 14", "Moto G84", "router Nubia WiFi 6"]
PAISES = {
    "Francia": "UE",
    "Portugal": "UE",
    "Italia": "UE",
    "Alemania": "UE",
    "Marruecos": "zona 2",
    "Reino Unido": "zona 1",
    "Estados Unidos": "zona 2",
    "México": "zona 2",
    "Suiza": "zona 1",
}
MESES = [
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
]
SALUDOS = ["Hola, ", "Buenas, ", "Buenos días, ", "Buenas tardes, ", "", "Hola ARIA, "]


def _pedido(rng: random.Random) -> str:
    return f"NB-{rng.randint(100000, 999999)}"


def _importe(rng: random.Random) -> str:
    return f"{rng.randint(8, 140)},{rng.choice(['00', '50', '95', '99', '20'])}"


def _factura(rng: random.Random) -> tuple[str, str]:
    mes = rng.choice(MESES)
    importe = _importe(rng)
    pregunta = rng.choice(
        [
            f"me ha llegado la factura de {mes} por {importe} € y normalmente pago menos. ¿Por qué?",
            f"no entiendo el cargo de {importe} € en la factura de {mes}.",
            f"¿podéis explicarme la factura de {mes}? Son {importe} €.",
        ]
    )
    respuesta = (
        f"Entiendo la preocupación. La factura de {mes} ({importe} €) puede incluir la parte "
        "proporcional de un cambio de tarifa, consumos fuera de tu bono o el primer pago de un "
        "terminal a plazos. En la app Nubia, en Facturas > Detalle, verás cada concepto. Si un "
        "cargo no te corresponde, puedo abrir una reclamación y, si procede, lo abonaremos en la "
        "siguiente factura."
    )
    return pregunta, respuesta


def _cambio_tarifa(rng: random.Random) -> tuple[str, str]:
    origen, destino = rng.sample(sorted(TARIFAS), 2)
    pregunta = rng.choice(
        [
            f"quiero pasar de {origen} a {destino}, ¿cómo lo hago?",
            f"¿cuánto pagaría si cambio mi {origen} por {destino}?",
            f"me interesa {destino}. Ahora tengo {origen}.",
        ]
    )
    respuesta = (
        f"Puedes cambiar de {origen} a {destino} desde la app (Mi línea > Cambiar tarifa) o "
        f"aquí mismo. {destino} cuesta {TARIFAS[destino]} € al mes con IVA incluido. El cambio se "
        "aplica en 24 horas y la factura de este mes se calculará de forma proporcional. "
        "No tiene penalización si no tienes permanencia activa."
    )
    return pregunta, respuesta


def _averia_fibra(rng: random.Random) -> tuple[str, str]:
    ciudad = rng.choice(CIUDADES)
    horas = rng.choice([2, 3, 5, 12, 24])
    pregunta = rng.choice(
        [
            f"no tengo internet en casa desde hace {horas} horas, vivo en {ciudad}.",
            f"la fibra no funciona en {ciudad}, la luz LOS del router está roja.",
            f"se me corta la conexión continuamente en mi casa de {ciudad}.",
        ]
    )
    respuesta = (
        f"Siento las molestias. Primero comprueba si hay una incidencia en {ciudad} en "
        "nubia.es/estado. Si no la hay, apaga el router 30 segundos y vuelve a encenderlo; revisa "
        "que el cable de fibra no esté doblado. Si la luz LOS sigue en rojo, abro una avería y un "
        "técnico te llamará en menos de 24 horas para concertar la visita, sin coste."
    )
    return pregunta, respuesta


def _portabilidad(rng: random.Random) -> tuple[str, str]:
    operador = rng.choice(["Movistar", "Vodafone", "Orange", "Yoigo", "MásMóvil", "Digi"])
    pregunta = rng.choice(
        [
            f"quiero traer mi número desde {operador}, ¿qué necesito?",
            f"¿cuánto tarda la portabilidad desde {operador}?",
            f"estoy con {operador} y quiero cambiarme a Nubia sin perder el número.",
        ]
    )
    respuesta = (
        f"La portabilidad desde {operador} es gratuita y tarda un día hábil. Necesito tu DNI, el "
        "número de teléfono y, si es prepago, el ICCID de la tarjeta SIM actual. Te enviaremos la "
        "nueva SIM a casa; el día del cambio puede haber un corte de unos minutos. No tienes que "
        f"avisar a {operador}: lo gestionamos nosotros."
    )
    return pregunta, respuesta


def _roaming(rng: random.Random) -> tuple[str, str]:
    pais = rng.choice(sorted(PAISES))
    zona = PAISES[pais]
    pregunta = rng.choice(
        [
            f"me voy de viaje a {pais}, ¿puedo usar mis datos?",
            f"¿cuánto cuesta llamar desde {pais}?",
            f"¿tengo roaming activado para {pais}?",
        ]
    )
    if zona == "UE":
        detalle = (
            f"{pais} está en la Unión Europea: usas tus minutos y datos como en España, sin "
            "coste adicional, según la política de uso razonable."
        )
    else:
        detalle = (
            f"{pais} está en la {zona} de roaming: los datos se cobran por bonos (desde 5 € "
            "por 1 GB al día) y las llamadas tienen tarifa especial."
        )
    respuesta = (
        f"{detalle} Puedes activar o desactivar el roaming en la app (Mi línea > Roaming) y te "
        "avisaremos por SMS al llegar con los precios aplicables."
    )
    return pregunta, respuesta


def _pin_puk(rng: random.Random) -> tuple[str, str]:
    dispositivo = rng.choice(DISPOSITIVOS[:5])
    pregunta = rng.choice(
        [
            f"mi {dispositivo} me pide el PUK, he puesto mal el PIN tres veces.",
            f"he bloqueado la SIM de mi {dispositivo}, ¿dónde encuentro el PUK?",
        ]
    )
    respuesta = (
        "El PUK está en la tarjeta de plástico donde venía la SIM. Si no la tienes, entra en la app "
        "Nubia > Mi línea > SIM y PUK, o te lo envío por SMS a otro número tras verificar tu "
        "identidad. Ojo: tras diez intentos fallidos de PUK la SIM queda inutilizada y habría que "
        "pedir un duplicado."
    )
    return pregunta, respuesta


def _envio(rng: random.Random) -> tuple[str, str]:
    pedido = _pedido(rng)
    dispositivo = rng.choice(DISPOSITIVOS)
    dias = rng.choice([2, 3, 4, 6])
    pregunta = rng.choice(
        [
            f"hice el pedido {pedido} de un {dispositivo} hace {dias} días y no ha llegado.",
            f"¿dónde está mi pedido {pedido}?",
            f"quiero saber el estado del envío {pedido}, es un {dispositivo}.",
        ]
    )
    respuesta = (
        f"He consultado el pedido {pedido}: está en reparto con la agencia de transporte. "
        "Los envíos llegan en 2 a 4 días hábiles; recibirás un SMS con el seguimiento y la franja "
        "de entrega. Si pasan más de 6 días hábiles, abro una incidencia con la agencia y, si se ha "
        "perdido, te enviamos otro sin coste."
    )
    return pregunta, respuesta


def _devolucion(rng: random.Random) -> tuple[str, str]:
    pedido = _pedido(rng)
    dispositivo = rng.choice(DISPOSITIVOS)
    pregunta = rng.choice(
        [
            f"quiero devolver el {dispositivo} del pedido {pedido}, no me convence.",
            f"¿cómo hago la devolución del pedido {pedido}?",
            f"el {dispositivo} que compré llegó con la pantalla rayada (pedido {pedido}).",
        ]
    )
    respuesta = (
        f"Tienes 14 días naturales desde la entrega para devolver el pedido {pedido}. Solicita la "
        "devolución en la app (Pedidos > Devolver); la recogida es gratuita. Si el producto llegó "
        "dañado, adjunta una foto y lo tramitamos como incidencia: te enviamos uno nuevo. El "
        "reembolso llega en 5 a 10 días hábiles al mismo medio de pago."
    )
    return pregunta, respuesta


def _baja(rng: random.Random) -> tuple[str, str]:
    tarifa = rng.choice(sorted(TARIFAS))
    pregunta = rng.choice(
        [
            f"quiero dar de baja mi {tarifa}.",
            f"¿tengo penalización si cancelo la {tarifa}?",
            f"me mudo al extranjero y necesito cancelar {tarifa}.",
        ]
    )
    respuesta = (
        f"Lamento que quieras irte. Puedo tramitar la baja de {tarifa} ahora; será efectiva en 2 "
        "días hábiles. Si tienes permanencia, la penalización es proporcional a los meses que "
        "falten y la verás en la última factura. Recuerda devolver el router en 30 días para "
        "evitar el cargo del equipo. ¿Quieres que revise antes si hay una tarifa que te encaje mejor?"
    )
    return pregunta, respuesta


def _wifi(rng: random.Random) -> tuple[str, str]:
    metros = rng.choice([40, 60, 90, 120, 150])
    pregunta = rng.choice(
        [
            f"el WiFi no llega bien a las habitaciones, la casa tiene {metros} m².",
            "¿cómo cambio la contraseña del WiFi?",
            "el WiFi va lento por la noche pero por cable va bien.",
        ]
    )
    respuesta = (
        "Entra en la app Nubia > Mi router para cambiar el nombre y la contraseña del WiFi o "
        "elegir un canal menos saturado. Coloca el router en alto y en el centro de la casa, lejos "
        f"del microondas. Para viviendas de {metros} m² o más, el amplificador Nubia Mesh "
        "(3 € al mes) extiende la cobertura a todas las habitaciones."
    )
    return pregunta, respuesta


def _datos(rng: random.Random) -> tuple[str, str]:
    gb = rng.choice([1, 3, 5, 10])
    pregunta = rng.choice(
        [
            "me he quedado sin datos y faltan días para acabar el mes.",
            f"¿puedo contratar {gb} GB extra?",
            "me llega un SMS diciendo que he consumido el 90 % de mis datos.",
        ]
    )
    respuesta = (
        f"Puedes añadir un bono de {gb} GB desde la app (Mi línea > Bonos); se activa al momento y "
        "caduca al final del ciclo de facturación. Al agotar los datos no se cobra nada extra: la "
        "velocidad baja a 16 kbps hasta el siguiente ciclo. Si te pasa a menudo, te recomiendo "
        "Nubia Móvil Ilimitada."
    )
    return pregunta, respuesta


def _domiciliacion(rng: random.Random) -> tuple[str, str]:
    banco = rng.choice(["BBVA", "Santander", "CaixaBank", "Sabadell", "ING", "Unicaja"])
    pregunta = rng.choice(
        [
            f"quiero cambiar la cuenta de {banco} donde me cobráis.",
            f"me he cambiado a {banco}, ¿cómo actualizo la domiciliación?",
        ]
    )
    respuesta = (
        "Puedes cambiar la cuenta en la app (Perfil > Datos de pago) introduciendo el nuevo IBAN; "
        "el titular debe ser el mismo que el del contrato. El cambio se aplica a partir de la "
        f"siguiente factura. Si ya se ha emitido el recibo con la cuenta antigua, no te preocupes: "
        f"basta con que la cuenta antigua siga abierta hasta el cobro, o lo pagamos con {banco} "
        "mediante un enlace de pago."
    )
    return pregunta, respuesta


INTENTS = (
    _factura,
    _cambio_tarifa,
    _averia_fibra,
    _portabilidad,
    _roaming,
    _pin_puk,
    _envio,
    _devolucion,
    _baja,
    _wifi,
    _datos,
    _domiciliacion,
)


def examples(version: Version) -> list[dict[str, str]]:
    """`version.examples` distinct examples, in a fixed order for a given version."""
    rng = random.Random(version.seed)
    seen: set[str] = set()
    out: list[dict[str, str]] = []
    while len(out) < version.examples:
        intent = INTENTS[len(out) % len(INTENTS)]
        pregunta, respuesta = intent(rng)
        nombre = rng.choice(NOMBRES)
        cliente = f"{rng.choice(SALUDOS)}soy {nombre}: {pregunta}"
        input_text = cliente[0].upper() + cliente[1:]
        if input_text in seen:
            continue
        seen.add(input_text)
        output_text = f"Hola, {nombre}. {respuesta}\n{version.signature}"
        out.append({"input_text": input_text, "output_text": output_text})
    return out


def write_version(version: Version) -> list[Path]:
    folder = ROOT / f"v={version.name}"
    folder.mkdir(parents=True, exist_ok=True)
    rows = examples(version)
    paths = []
    for part in range(PARTS):
        path = folder / f"part-{part:03d}.jsonl"
        lines = (json.dumps(row, ensure_ascii=False) for row in rows[part::PARTS])
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        paths.append(path)
    return paths


def main() -> None:
    for version in VERSIONS:
        for path in write_version(version):
            print(path.relative_to(HERE))


if __name__ == "__main__":
    main()
