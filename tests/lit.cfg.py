# lit configuration shared by tests/golden and tests/errors.
import os
import lit.formats

config.name = "modc"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mod", ".test"]

site = {}
with open(os.environ["MODC_LIT_SITE"]) as f:
    exec(f.read(), site)

config.substitutions.append(("%modc", site["modc"]))
config.substitutions.append(("%examples", os.path.join(site["source_dir"], "examples")))
config.substitutions.append(("%cases", site["shared_cases"]))
config.substitutions.append(("%python", "/usr/bin/python3"))
config.substitutions.append(("FileCheck", site["filecheck"]))
config.environment["NO_COLOR"] = "1"
config.test_source_root = os.path.dirname(__file__)
config.excludes = ["unit", "CMakeLists.txt"]
