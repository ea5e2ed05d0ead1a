"""KDP as published (pip install kdp): PreprocessingModel statistics + build_preprocessor."""

import os

from kdp import FeatureType, PreprocessingModel

from benchmarks.contenders import arguments


def main():
    args, floats, strings, files = arguments()
    specs = {n: FeatureType.FLOAT_NORMALIZED for n in floats}
    specs |= {n: FeatureType.STRING_CATEGORICAL for n in strings}
    model = PreprocessingModel(
        path_data=args.pattern,
        features_specs=specs,
        features_stats_path=os.path.join(args.workdir, "kdp_stats.json"),
        overwrite_stats=True,
    )
    result = model.build_preprocessor()
    print(type(result["model"]).__name__)


if __name__ == "__main__":
    main()
