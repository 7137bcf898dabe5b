"""The deploy itself, the same for both targets: build the wheel, decide each requirement against the
image, refuse conflicts before anything is touched, then publish, install and upload, in an order that
never lets the DAG processor see a DAG whose imports are not installed yet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from scripts.composer import decisions as dec
from scripts.composer.image import COMPOSER_DIR, REPO, ImagePackages, parse_package_list, read_vendored
from scripts.composer.steps import DeployError, Printer, Target, Upload
from scripts.composer.wheel import Wheel, build_wheel

#: The versions the Composer twin runs; what the deploy installs for a package the image lacks.
TWIN_PINS = COMPOSER_DIR / "twin-constraints.txt"
#: The package of the old layout (plugins/aria_tuning), removed from the bucket's plugins/ if present.
PACKAGE_DIR = "aria_tuning"


@dataclass(frozen=True)
class Options:
    dry_run: bool
    requirements: Sequence[str] = ()  # extra PyPI requirements, beyond the wheel's own
    image_packages: Path | None = None  # a saved `pip list` of the environment instead of the vendored list
    pins: Path = TWIN_PINS
    dist_dir: Path = REPO / ".run" / "composer" / "dist"
    variables: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Result:
    wheel: Wheel
    decisions: list[dec.Decision]
    packages: dict[str, str]  # what was (or would be) installed: name -> specifier


def deploy(target: Target, options: Options, printer: Printer) -> Result:
    mode = " [dry run: nothing is changed]" if options.dry_run else ""
    printer.note(f"Deploy to {target.description}{mode}")
    wheel = build_wheel(options.dist_dir)
    printer.note(f"Wheel: {_shown(wheel.path)} ({wheel.name} {wheel.version}, sha256 {wheel.sha256})")
    requirements = _requirements(wheel, options.requirements)
    pins, pins_source = dec.read_pins(options.pins), _shown(options.pins)
    image = _image(options.image_packages)
    decisions = _decide(printer, requirements, image, pins, pins_source)
    printer.note("Checks before any change (read-only; `?` marks a read, `+` a change):")
    environment = target.inspect()  # gcloud, the environment, its own package list
    if environment is not None:
        decisions = _decide(printer, requirements, environment.packages, pins, pins_source)
    target.check_published(wheel)
    packages = {wheel.name: f"=={wheel.version}"}
    packages.update(
        (name, f"=={version}") for name, version in (p.split("==", 1) for p in dec.to_install(decisions))
    )
    _note_unknown(printer, decisions)
    printer.note("Changes, in order (each skipped when the environment already has it):")
    target.write_pip_conf(environment)
    target.publish(wheel)
    target.install(packages, environment)
    target.remove_plugin_folder(PACKAGE_DIR)
    for upload in uploads():
        target.upload(upload)
    for key, value in options.variables.items():
        target.set_variable(key, value)
    target.finish(environment)
    return Result(wheel, decisions, packages)


def _image(saved_list: Path | None) -> ImagePackages:
    if saved_list is None:
        return read_vendored()
    return parse_package_list(
        saved_list.read_text(), f"the environment listed in {saved_list}", str(saved_list)
    )


def _requirements(wheel: Wheel, extra: Sequence[str]) -> list[tuple[Requirement, str]]:
    found = [(req, f"required by {wheel.name} {wheel.version}") for req in wheel.requires]
    for spec in extra:
        try:
            found.append((Requirement(spec), "--requirement"))
        except InvalidRequirement as exc:
            raise DeployError(f"--requirement {spec!r} is not a PEP 508 requirement: {exc}") from exc
    return found


def _decide(
    printer: Printer,
    requirements: list[tuple[Requirement, str]],
    image: ImagePackages,
    pins: Mapping[str, str],
    pins_source: str,
) -> list[dec.Decision]:
    """Decide and print; raise ConflictError (before any change) when a requirement conflicts."""
    extent = "complete" if image.complete else f"PARTIAL: readable up to {image.readable_until}"
    printer.note(f"Preinstalled packages of {image.image}: {image.source} ({extent})")
    try:
        decided = dec.decide(requirements, image, pins, pins_source)
    except dec.NoTestedPinError as exc:
        raise DeployError(str(exc)) from exc
    for decision in decided:
        printer.note(f"  {decision.line()}")
    if refused := dec.refused(decided):
        raise dec.ConflictError(image, refused)
    return decided


def _note_unknown(printer: Printer, decisions: list[dec.Decision]) -> None:
    unknown = [d for d in decisions if d.action is dec.Action.UNKNOWN]
    if not unknown:
        return
    printer.note(
        f"The image list is partial: {len(unknown)} requirement(s) above are UNKNOWN. A real run reads the "
        "environment's own list (`gcloud composer environments list-packages`), refuses a conflict there and "
        f"adds the pin shown for each package it lacks ({', '.join(d.install or d.name for d in unknown)}) "
        "to the PyPI update below, before changing anything."
    )


def uploads() -> list[Upload]:
    """The bucket's content: the console-link plugin, then the DAG files, then include/ as data/include.

    The DAG goes last: once it is in dags/ the DAG processor parses it, and what it imports (the
    installed package) is there by then. The sample data stays local: datasets live in the data bucket.
    """
    found = [Upload("plugins", path) for path in sorted((REPO / "plugins").glob("*.py"))]
    found += [Upload("dags", path) for path in sorted((REPO / "dags").glob("*.py"))]
    found += [
        Upload("data", path, "include")
        for path in sorted((REPO / "include").iterdir())
        if path.name != "sample_data" and not path.name.startswith(".")
    ]
    return found


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)
