"""TFDS's standard builder test on dummy_data/heart_failure.csv (10 rows, one without a target)."""

import tensorflow_datasets as tfds

from datasets.heart_failure import heart_failure_dataset_builder


class HeartFailureTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = heart_failure_dataset_builder.Builder
    SPLITS = {"train": 9}  # 10 rows, the one with a blank target dropped

    def test_metadata_counts_the_dropped_row(self):
        builder = self._make_builder()
        self._download_and_prepare_as_dataset(builder)
        self.assertEqual(builder.info.metadata["rows_read"], 10)
        self.assertEqual(builder.info.metadata["dropped_missing_target"], 1)


if __name__ == "__main__":
    tfds.testing.test_main()
