from .max_pixels import (DEFAULT_MAX_TEST_PIXELS, ClustSegDetDataPreprocessor,
                         ClustSegSegDataPreProcessor, ImageTooLargeError, MaxTestPixelsMixin,
                         check_test_image_size)

__all__ = [
    'DEFAULT_MAX_TEST_PIXELS', 'ClustSegDetDataPreprocessor', 'ClustSegSegDataPreProcessor',
    'ImageTooLargeError', 'MaxTestPixelsMixin', 'check_test_image_size'
]
