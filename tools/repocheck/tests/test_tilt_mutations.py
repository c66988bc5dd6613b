"""The Tiltfile check agrees with real Tilt on single-line edits, both ways.

Every entry is one edit of today's Tiltfile (a line appended, or one text
replaced) with the verdict real Tilt gave when the edited Tiltfile was loaded:
``ACCEPTED``, or a fragment of the error Tilt printed. The verdicts were
recorded once by running ``tilt alpha tiltfile-result`` (the version in
``TILT_RUN``) on a scratch copy of the repository whose Tiltfile started with
``v1alpha1.extension_repo`` pointing at a copy of tilt-extensions
(``EXTENSIONS_RUN``), with a kubeconfig whose context is ``kind-speech-mesh``.
Neither Tilt nor that copy is part of this repository.

The check must refuse exactly what Tilt refuses (no false refusals either),
with Tilt's words for why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from repocheck import tilt
from repocheck.tilt.checks import tilt_refusals

ROOT = tilt.REPO_ROOT
TILTFILE = (ROOT / "Tiltfile").read_text()

TILT_RUN = "Tilt v0.34.0 (tag v0.34.0, cb533d7), built from source with Go 1.23.5"
EXTENSIONS_RUN = "tilt-dev/tilt-extensions a8701c0 (restart_process)"

ACCEPTED = ""


@dataclass(frozen=True)
class Mutation:
    id: str
    new: str
    tilt: str  # ACCEPTED, or a fragment of the error real Tilt gave
    old: str | None = None  # None: ``new`` is appended as a last line
    # ``tilt up -- --books-db=postgres`` (for Tilt: a tilt_config.json saying so)
    postgres: bool = False
    # Where the interpreters' own words differ (syntax errors): what the check says.
    ours: str | None = None

    def flags(self) -> dict[str, object]:
        return {"books-db": "postgres"} if self.postgres else {}

    def source(self) -> str:
        if self.old is None:
            return TILTFILE + "\n" + self.new + "\n"
        assert self.old in TILTFILE, f"the Tiltfile no longer contains {self.old!r}"
        return TILTFILE.replace(self.old, self.new, 1)


M = Mutation
# The books-db resource's pod selection (only with --books-db=postgres), edited below.
SELECTORS = (
    "        extra_pod_selectors="
    "[{'cnpg.io/cluster': 'books-db', 'cnpg.io/podRole': 'instance'}],\n"
)
MUTATIONS: list[Mutation] = [
    # --------------------------------------------------------------- k8s_resource
    M(
        "readiness-bogus",
        "k8s_resource('books', pod_readiness='bogus')",
        'for parameter "pod_readiness": Invalid value. Allowed: {ignore, wait}. Got: bogus',
    ),
    M("readiness-wait", "k8s_resource('books', pod_readiness='wait')", ACCEPTED),
    M("readiness-ignore", "k8s_resource('books', pod_readiness='ignore')", ACCEPTED),
    M(
        "readiness-int",
        "k8s_resource('books', pod_readiness=1)",
        'for parameter "pod_readiness": Must be a string. Got: int',
    ),
    M(
        "trigger-int",
        "k8s_resource('books', trigger_mode=1)",
        'for parameter "trigger_mode": got int, want TriggerMode',
    ),
    M(
        "trigger-string",
        "k8s_resource('books', trigger_mode='manual')",
        'for parameter "trigger_mode": got string, want TriggerMode',
    ),
    M("trigger-manual", "k8s_resource('books', trigger_mode=TRIGGER_MODE_MANUAL)", ACCEPTED),
    M(
        "forward-notaport",
        "k8s_resource('books', port_forwards='notaport')",
        'k8s_resource "books": portForward port value "notaport" is not in the valid range '
        "[0-65535]",
    ),
    M("forward-string", "k8s_resource('books', port_forwards='18090:8080')", ACCEPTED),
    M(
        "forward-range",
        "k8s_resource('books', port_forwards=70000)",
        'k8s_resource "books": portForward port value 70000 is not in the valid range [0-65535]',
    ),
    M("forward-host", "k8s_resource('books', port_forwards=['localhost:18091:8080'])", ACCEPTED),
    M(
        "forward-bad-host",
        "k8s_resource('books', port_forwards=['bad_host:18091:8080'])",
        'k8s_resource "books": portForward host value "18091" is not a valid hostname or IP '
        "address",
    ),
    M(
        "forward-float",
        "k8s_resource('books', port_forwards=[18090.0])",
        'k8s_resource "books": port_forwards arg [18090.0] includes element 18090.0 which must '
        "be an int or a port_forward; is a starlark.Float",
    ),
    M(
        "selectors-int",
        "k8s_resource('books', extra_pod_selectors={'app': 1})",
        "pod label values must be strings; got '1' of type starlark.Int",
    ),
    M("selectors-dict", "k8s_resource('books', extra_pod_selectors={'app': 'books'})", ACCEPTED),
    M(
        "selectors-list",
        "k8s_resource('books', extra_pod_selectors=[{'app': 'books'}, {'tier': 'db'}])",
        ACCEPTED,
    ),
    M(
        "selectors-strings",
        "k8s_resource('books', extra_pod_selectors=['app=books'])",
        "pod labels elements must be dicts; got starlark.String",
    ),
    M(
        "labels-space",
        "k8s_resource('books', labels='a b')",
        'for parameter "labels": Invalid label "a b": name part must consist of alphanumeric '
        "characters, '-', '_' or '.', and must start and end with an alphanumeric character",
    ),
    M("labels-list", "k8s_resource('books', labels=['data', 'storage-1'])", ACCEPTED),
    M(
        "labels-prefix",
        "k8s_resource('books', labels='team/data')",
        'for parameter "labels": Invalid label "team/data": a valid label must be an empty '
        "string or consist of alphanumeric characters, '-', '_' or '.', and must start and end "
        "with an alphanumeric character",
    ),
    M(
        "labels-long",
        "k8s_resource('books', "
        "labels='lxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx')",
        'for parameter "labels": Invalid label '
        '"lxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx": name part must be '
        "no more than 63 characters",
    ),
    M("auto-init-none", "k8s_resource('books', auto_init=None)", ACCEPTED),
    M(
        "auto-init-string",
        "k8s_resource('books', auto_init='no')",
        'for parameter "auto_init": expected starlark.Bool or None, got starlark.String',
    ),
    M("discovery-ok", "k8s_resource('books', discovery_strategy='selectors-only')", ACCEPTED),
    M(
        "discovery-bad",
        "k8s_resource('books', discovery_strategy='all')",
        'for parameter "discovery_strategy": Invalid. Must be one of: "default", "selectors-only"',
    ),
    M("links-scheme-less", "k8s_resource('books', links=['localhost:18081'])", ACCEPTED),
    M(
        "links-bad-port",
        "k8s_resource('books', links=['http://localhost:port/'])",
        'for parameter "links": validating URL "http://localhost:port/": parse '
        '"http://localhost:port/": invalid port ":port" after host',
    ),
    M(
        "links-no-scheme",
        "k8s_resource('books', links=[':18081'])",
        'for parameter "links": validating URL ":18081": parse ":18081": missing protocol scheme',
    ),
    M(
        "links-int",
        "k8s_resource('books', links=[18081])",
        'for parameter "links": `Want a string, a link, or a sequence of these; found 18081 '
        "(type: starlark.Int)",
    ),
    M(
        "rename-slash",
        "k8s_resource('books', new_name='books/api')",
        'for parameter "new_name": invalid value "books/api": may not contain \'/\'',
    ),
    M("rename-ok", "k8s_resource('books', new_name='books-api')", ACCEPTED),
    M(
        "rename-taken",
        "k8s_resource('books', new_name='protos-codegen')",
        'k8s_resource specified to rename "books" to "protos-codegen": local_resource named '
        '"protos-codegen" already exists',
    ),
    M(
        "unknown-workload",
        "k8s_resource('books-db', labels=['data'])",
        'k8s_resource specified unknown resource "books-db"',
    ),
    M(
        "objects-free",
        "k8s_resource(new_name='storage', objects=['books-data:persistentvolumeclaim'])",
        ACCEPTED,
    ),
    M(
        "objects-taken",
        "k8s_resource(new_name='books-svc', objects=['books:service'])",
        'No object identified by the fragment "books:service" could be found in remaining YAML',
    ),
    M(
        "objects-ambiguous",
        "k8s_resource(new_name='books-all', objects=['books'])",
        '"books" is not a unique fragment',
    ),
    M(
        "objects-none",
        "k8s_resource(new_name='extras')",
        "k8s_resource doesn't specify a workload or any objects. All non-workload resources "
        "must specify 1 or more objects",
    ),
    M(
        "no-name",
        "k8s_resource(labels=['data'])",
        "Resource name missing. Must give a name for an existing resource or a new_name to "
        "create a new resource.",
    ),
    M("deps-unknown", "k8s_resource('books', resource_deps=['nope'])", ACCEPTED),
    M(
        "objects-too-many-parts",
        "k8s_resource(new_name='x', objects=['a:b:c:d'])",
        "Too many parts in selector",
    ),
    M(
        "deps-int",
        "k8s_resource('books', resource_deps=['protos-codegen', 1])",
        "k8s_resource: resource_deps: '1' is a starlark.Int, not a string",
    ),
    # The database resource of --books-db=postgres, as issue 24 extends it.
    M(
        "books-db-wait-selectors",
        "        extra_pod_selectors=[{'cnpg.io/cluster': 'books-db'}],\n",
        ACCEPTED,
        old=SELECTORS,
        postgres=True,
    ),
    M(
        "books-db-selector-dict",
        "        extra_pod_selectors={'cnpg.io/cluster': 'books-db', 'role': 'primary'},\n",
        ACCEPTED,
        old=SELECTORS,
        postgres=True,
    ),
    M(
        "books-db-readiness-ready",
        "        pod_readiness='ready',\n        labels=['data'],\n    )",
        'for parameter "pod_readiness": Invalid value. Allowed: {ignore, wait}. Got: ready',
        old="        pod_readiness='wait',\n        labels=['data'],\n    )",
        postgres=True,
    ),
    M(
        "books-db-selector-int",
        "        extra_pod_selectors={'cnpg.io/instanceRole': 1},\n",
        "pod label values must be strings; got '1' of type starlark.Int",
        old=SELECTORS,
        postgres=True,
    ),
    # --------------------------------------------------------------- local_resource
    M(
        "local-duplicate",
        "local_resource('protos-codegen', cmd='true')",
        'local_resource named "protos-codegen" already exists',
    ),
    M(
        "local-workload-name",
        "local_resource('books', cmd='true')",
        'local_resource named "books" already exists',
    ),
    M(
        "local-full",
        "local_resource('lint', cmd=['uv', 'run', 'ruff', 'check'], labels=['codegen'], "
        "auto_init=False, trigger_mode=TRIGGER_MODE_MANUAL, allow_parallel=True)",
        ACCEPTED,
    ),
    M("local-no-name", "local_resource('', cmd='true')", "[validate] manifest missing name"),
    M(
        "local-no-cmd",
        "local_resource('lint')",
        "local_resource must have a cmd and/or a serve_cmd, but both were empty",
    ),
    M(
        "local-serve",
        "local_resource('lint', serve_cmd='uv run stack up', serve_env={'A': 'b'})",
        ACCEPTED,
    ),
    M(
        "local-empty-env-key",
        "local_resource('lint', cmd='true', env={'': 'x'})",
        'environment has empty key for value "x"',
    ),
    M(
        "local-cmd-none",
        "local_resource('lint', cmd=None, serve_cmd='true')",
        "a command must be a string or list of strings. found starlark.NoneType",
    ),
    M(
        "local-cmd-int",
        "local_resource('lint', cmd=['true', 1])",
        "a command must be a string or a list of strings: '1' is a starlark.Int, not a string",
    ),
    M(
        "local-ignore-newline",
        "local_resource('lint', cmd='true', ignore=['a\\nb'])",
        'ignore cannot contain newlines; found ignore: "a\\nb"',
    ),
    # --------------------------------------------------------------- config
    M(
        "define-after-parse",
        "config.define_string('late')",
        "config.define_string cannot be called after config.parse is called",
    ),
    M(
        "define-twice",
        "config.define_string('apm')\ncfg = config.parse()",
        "apm defined multiple times",
        old="cfg = config.parse()",
    ),
    M(
        "define-positional",
        "config.define_string_list('services', args=True)\ncfg = config.parse()",
        ACCEPTED,
        old="cfg = config.parse()",
    ),
    M(
        "define-two-positional",
        "config.define_string_list('a', args=True)\nconfig.define_string_list('b', "
        "args=True)\ncfg = config.parse()",
        "both b and a are defined as positional args",
        old="cfg = config.parse()",
    ),
    M(
        "define-empty-name",
        "config.define_bool('')\ncfg = config.parse()",
        "'name' is required",
        old="cfg = config.parse()",
    ),
    # --------------------------------------------------------------- docker_build
    M(
        "build-uppercase-path",
        "docker_build('speech-mesh/Extra', '.', dockerfile='services/Dockerfile')",
        "must be lowercase",
    ),
    M(
        "build-twice",
        "docker_build('speech-mesh/books', '.', dockerfile='services/Dockerfile')",
        'Image for ref "speech-mesh/books" has already been defined',
    ),
    M(
        "build-library-path-distinct",
        "docker_build('docker.io/library/speech-mesh/books', '.', "
        "dockerfile='services/Dockerfile')",
        ACCEPTED,
    ),
    M(
        "build-hub-spelling-twice",
        "docker_build('index.docker.io/speech-mesh/books', '.', dockerfile='services/Dockerfile')",
        'Image for ref "speech-mesh/books" has already been defined',
    ),
    M(
        "build-contents-and-file",
        "docker_build('speech-mesh/extra', '.', dockerfile='services/Dockerfile', "
        "dockerfile_contents='FROM scratch')",
        "Cannot specify both dockerfile and dockerfile_contents",
    ),
    M(
        "build-uppercase-domain",
        "docker_build('Speech-Mesh/extra', '.', dockerfile='services/Dockerfile')",
        ACCEPTED,
    ),
    M(
        "build-glob-only",
        "docker_build('speech-mesh/extra', '.', dockerfile='services/Dockerfile', "
        "only=['services/*'])",
        "'only' does not support '*' file globs. Must be a real path: services/*",
    ),
    M(
        "build-no-dockerfile",
        "docker_build('speech-mesh/extra', '.', dockerfile='services/Nope')",
        "error reading dockerfile: open ",
    ),
    M(
        "build-extra-tag",
        "docker_build('speech-mesh/extra', '.', dockerfile='services/Dockerfile', "
        "extra_tag='speech-mesh/extra:dev')",
        ACCEPTED,
    ),
    M(
        "build-bad-extra-tag",
        "docker_build('speech-mesh/extra', '.', dockerfile='services/Dockerfile', "
        "extra_tag='speech mesh')",
        'Argument extra_tag="speech mesh" not a valid image reference: invalid reference format',
    ),
    M(
        "sync-relative",
        "docker_build('speech-mesh/extra', '.', dockerfile='services/Dockerfile', "
        "live_update=[sync('services/books/src', 'app/src')])",
        'live_update: spec.syncs[0]: Invalid value: "app/src": sync destination is not absolute',
    ),
    M(
        "sync-after-run",
        "docker_build('speech-mesh/extra', '.', dockerfile='services/Dockerfile', "
        "live_update=[run('true'), sync('services/books/src', '/app/src')])",
        "live_update: all sync steps must precede all run steps",
    ),
    M(
        "sync-then-run",
        "docker_build('speech-mesh/extra', '.', dockerfile='services/Dockerfile', "
        "live_update=[sync('services/books/src', '/app/src'), run('true', "
        "trigger=['uv.lock'])])",
        ACCEPTED,
    ),
    M(
        "fallback-only",
        "docker_build('speech-mesh/extra', '.', dockerfile='services/Dockerfile', "
        "live_update=[fall_back_on('uv.lock')])",
        "live_update: spec.syncs: Invalid value: []v1alpha1.LiveUpdateSync(nil): must contain "
        "at least 1 sync or 1 exec to run on live update",
    ),
    M(
        "initial-sync-newer",
        "fall_back_on(DEPENDENCY_FILES), initial_sync(),",
        "undefined: initial_sync",
        old="fall_back_on(DEPENDENCY_FILES),",
    ),
    M(
        "local-serve-dir-int",
        "local_resource('lint', cmd='true', serve_dir=1)",
        "a command directory must be empty or a string",
    ),
    M(
        "unused-step",
        "sync('services/books/src', '/app/x')",
        "live_update steps that were created but not used in a live_update",
    ),
    M(
        "restart-target",
        "restart_file=RESTART_FILE, target='runtime',",
        ACCEPTED,
        old="restart_file=RESTART_FILE,",
    ),
    M(
        "restart-fallback-last",
        "] + [sync(src, '/app/' + src) for src in sources] + [fall_back_on('uv.lock')],",
        "live_update: fall_back_on steps must appear at the start of the list",
        old="] + [sync(src, '/app/' + src) for src in sources],",
    ),
    M(
        "restart-no-steps",
        "docker_build_with_restart('speech-mesh/extra', '.', entrypoint=ENTRYPOINT, "
        "live_update=[], dockerfile=DOCKERFILE)",
        "requires at least one live_update step",
    ),
    M(
        "restart-restart-container",
        "docker_build_with_restart('speech-mesh/extra', '.', entrypoint=ENTRYPOINT, "
        "live_update=[sync('protos/src', '/app/protos/src'), restart_container()], "
        "dockerfile=DOCKERFILE)",
        "is not compatible with live_update step: `restart_container()`",
    ),
    M(
        "restart-entrypoint-int",
        "docker_build_with_restart('speech-mesh/extra', '.', entrypoint=1, "
        "live_update=[sync('protos/src', '/app/protos/src')], dockerfile=DOCKERFILE)",
        "`entrypoint` must be a string or list of strings",
    ),
    M(
        "restart-string-entrypoint",
        "docker_build_with_restart('speech-mesh/extra', '.', entrypoint='/app/run', "
        "live_update=[sync('protos/src', '/app/protos/src')], dockerfile=DOCKERFILE)",
        ACCEPTED,
    ),
    M(
        "restart-unknown-keyword",
        "restart_file=RESTART_FILE, olny=['uv.lock'],",
        'unexpected keyword argument "olny"',
        old="restart_file=RESTART_FILE,",
    ),
    M(
        "restart-trigger-int",
        "restart_file=RESTART_FILE, trigger=[1],",
        "run cmd 'date > /app/.restart-proc' triggers contained value '1' of type 'int'. it "
        "may only contain strings",
        old="restart_file=RESTART_FILE,",
    ),
    M(
        "restart-bad-suffix",
        "restart_file=RESTART_FILE, base_suffix='-Base',",
        # Only the client goes through the restart_process extension since the services'
        # images run the warm parent: the same refusal, for the client's image.
        'Argument 1 (ref): can\'t parse "speech-mesh/client-Base": invalid reference format: '
        "repository name (speech-mesh/client-Base) must be lowercase",
        old="restart_file=RESTART_FILE,",
    ),
    # --------------------------------------------------------------- settings
    M(
        "version-newer",
        "version_settings(constraint='>=0.35.0')",
        "you are running Tilt version 0.34.0, which doesn't match the version constraint "
        "specified in your Tiltfile: '>=0.35.0'",
        old="version_settings(constraint='>=0.33.0')",
    ),
    M(
        "version-range",
        "version_settings(constraint='>=0.33.0 <1.0.0')",
        ACCEPTED,
        old="version_settings(constraint='>=0.33.0')",
    ),
    M(
        "version-short",
        "version_settings(constraint='>=0.34')",
        'error parsing version constraint: Could not parse Range ">=0.34": Could not parse '
        'version "0.34" in ">=0.34": No Major.Minor.Patch elements found',
        old="version_settings(constraint='>=0.33.0')",
    ),
    M(
        "version-wildcard",
        "version_settings(constraint='0.34.x')",
        ACCEPTED,
        old="version_settings(constraint='>=0.33.0')",
    ),
    M("fail", "fail('stop here')", "stop here"),
    M("print", "print('canary weight', cfg.get('canary-weight', ''))", ACCEPTED),
    M(
        "annotation",
        "def typed(a: str) -> str:\n    return a",
        "got ':', want ')'",
        ours="type annotations are not allowed",
    ),
    M(
        "trigger-mode-twice",
        "trigger_mode(TRIGGER_MODE_MANUAL)\ntrigger_mode(TRIGGER_MODE_AUTO)",
        "trigger_mode can only be called once",
    ),
    M("context-argument", "k8s_context('kind-speech-mesh')", ACCEPTED),
    M("context-compare", "if k8s_context() != KIND_CONTEXT: fail('no')", ACCEPTED),
    M("parse-again", "cfg2 = config.parse()", ACCEPTED),
    M(
        "updates-zero",
        "update_settings(max_parallel_updates=0)",
        "max number of parallel updates must be >= 1(got: 0)",
    ),
    M(
        "updates-ok",
        "update_settings(max_parallel_updates=2, k8s_upsert_timeout_secs=60)",
        ACCEPTED,
    ),
    M(
        "updates-string",
        "update_settings(k8s_upsert_timeout_secs='60')",
        'for parameter "k8s_upsert_timeout_secs": got starlark.String, want int',
    ),
    M(
        "contexts-int",
        "allow_k8s_contexts(['kind-speech-mesh', 1])",
        "allow_k8s_contexts contexts must be a string or a sequence of strings; found a "
        "starlark.Int",
    ),
    # --------------------------------------------------------------- yaml, links, ports, files
    M("yaml-twice", "k8s_yaml(encode_yaml_stream(deployed))", "Duplicate YAML: Namespace apps"),
    M(
        "yaml-twice-allowed",
        "k8s_yaml(encode_yaml_stream(deployed), allow_duplicates=True)",
        'k8s_resource specified unknown resource "books"',
    ),
    M("yaml-empty", "k8s_yaml(blob(''))", "Empty YAML passed to k8s_yaml"),
    M(
        "forward-object",
        "k8s_resource('books', port_forwards=[port_forward(18084, 8080, name='x', "
        "link_path='/schema')])",
        ACCEPTED,
    ),
    M(
        "forward-object-string",
        "port_forward('18084')",
        "for parameter local_port: got string, want int",
    ),
    M(
        "link-empty",
        "k8s_resource('books', links=[link('', 'empty')])",
        'validating URL "": url empty',
    ),
    M(
        "link-fragment",
        "k8s_resource('books', links=[link('http://localhost:18081/docs#top', 'docs')])",
        ACCEPTED,
    ),
    M(
        "getenv-int",
        "os.getenv(1)",
        "for parameter key: Value should be convertible to string, but is type int",
    ),
    M(
        "kustomize-flags-string",
        "kustomize('k8s', flags='--enable-helm')",
        'for parameter "flags": value should be a List or Tuple of strings, but is of type string',
    ),
    M("read-yaml-missing", "read_yaml('nope.yaml')", "nope.yaml: no such file or directory"),
    M("read-yaml-default", "read_yaml('nope.yaml', default={})", ACCEPTED),
    M("encode-yaml-string", "encode_yaml_stream('x')", "for parameter objs: got string, want list"),
    M(
        "decode-yaml-int",
        "decode_yaml_stream(1)",
        "for parameter yaml: Value should be convertible to string, but is type int",
    ),
]


def test_the_table_is_large_and_goes_both_ways() -> None:
    accepted = [m for m in MUTATIONS if m.tilt == ACCEPTED]
    refused = [m for m in MUTATIONS if m.tilt != ACCEPTED]
    assert len(MUTATIONS) > 40
    assert len(accepted) >= 15 and len(refused) >= 25
    assert len({m.id for m in MUTATIONS}) == len(MUTATIONS)


def _called(source: str) -> set[str]:
    names = set(re.findall(r"(?<![\w.])([a-z_][\w.]*)\(", source))
    return {n for n in names if not n.startswith(("_", "cfg.", "obj", "o."))}


def test_every_builtin_the_tiltfile_calls_is_mutated() -> None:
    api = tilt.TiltApi.load()
    builtins = (set(api.functions) | {"docker_build_with_restart"}) & _called(TILTFILE)
    mutated = set().union(*(_called(m.new) for m in MUTATIONS))
    assert builtins - mutated == set()


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.id)
def test_the_check_gives_tilts_verdict(mutation: Mutation) -> None:
    result = tilt.evaluate_tiltfile(ROOT, source=mutation.source(), flags=mutation.flags())
    refusals = tilt_refusals(result)
    if mutation.tilt == ACCEPTED:
        assert refusals == [], f"real Tilt accepts this edit: {mutation.new!r}"
    else:
        expected = mutation.ours or mutation.tilt
        assert any(expected in r for r in refusals), (expected, refusals)
