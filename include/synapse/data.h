// Data: file readers (IDX/MNIST, CSV), a composable Dataset pipeline and normalising transforms.
//
// Readers
//   Tensor images = data::read_idx("data/mnist/train-images-idx3-ubyte");     // uint8 [60000, 28, 28]
//   data::Mnist m = data::load_mnist("data/mnist");                           // the four files, .gz or raw
//   auto [x, y] = data::read_csv("mnist_train.csv");                          // float32 [N, 784], int64 [N]
// (scripts/fetch-data mnist downloads and verifies MNIST into data/mnist.)
//
// Datasets
//   A Dataset is a cheap, copyable handle to an immutable description of a sequence of examples; an
//   example is a std::vector<Tensor> such as {image, label}. Each call to iterate() (or a range-for)
//   starts a new pass, an "epoch", over the data. Transformations return a new Dataset and never
//   change the one they are called on, so pipelines chain like tf.data:
//
//     auto [train, valid] = data::split({m.train_images, m.train_labels}, 55000);
//     auto ds = data::Dataset::from_tensors(train)
//                   .shuffle(55000, /*seed=*/1)     // full shuffle, a new order every epoch
//                   .batch(50)                       // {uint8 [50, 28, 28], uint8 [50]}
//                   .map([](data::Example b) { b[0] = data::scale(b[0]); return b; })  // float32 [0, 1]
//                   .prefetch(2);                    // next batches built on a background thread
//     for (int epoch = 0; epoch < 10; ++epoch)
//       for (const data::Example& batch : ds) train_step(batch[0], batch[1]);
//
//   Examples produced by from_tensors are zero-copy views of the rows of the source tensors: treat
//   them as read-only (clone() before writing into one in place). from_tensors -> shuffle -> batch
//   works on row indices and memcpys each row once into the batch (a few microseconds for 50 MNIST
//   images); a map placed before batch runs per example, so prefer mapping whole batches.
//
// Custom datasets
//   For data that can be read by index, use Dataset::from_function(size, fn). For anything else
//   (streams, files read sequentially), derive from data::Source, implement iterate() (and size()
//   when it is known) and wrap it: Dataset(std::make_shared<MySource>(...)). An Iterator returns
//   std::nullopt at the end of the pass; iterate() may be called many times, also concurrently
//   from a prefetch thread, so keep per-pass state in the Iterator, not in the Source. The pipeline
//   keeps every Source alive while one of its iterators runs, so an Iterator may point to its Source.
//
// Transforms
//   scale(x) turns uint8 pixels into float32 in [0, 1]. A Normalizer learns per-feature statistics
//   (min/max or mean/std) from training data, applies them to any tensor, and exposes them as a
//   named map of tensors for checkpoints (state() / Normalizer::from_state()).
#pragma once
#include <cstdint>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "synapse/tensor.h"

namespace synapse::data {

// ================================ readers ================================

// Reads an IDX file (the MNIST format), raw or gzip-compressed (detected by its first two bytes).
// Element types: 0x08 uint8 -> uint8, 0x09 int8 / 0x0B int16 / 0x0C int32 -> int32,
// 0x0D float32 / 0x0E float64 -> float32. MNIST images (magic 0x00000803) give uint8 [N, rows, cols],
// labels (0x00000801) uint8 [N]. Throws Error naming the file for a missing or unreadable file, a
// bad magic number, or a size that disagrees with the header.
Tensor read_idx(const std::string& path);

// Writes `t` as an IDX file (uint8/bool -> 0x08, int32 -> 0x0C, float32 -> 0x0D; int64 is refused),
// gzip-compressed when `gzip` is true. read_idx(path) gives the tensor back.
void write_idx(const std::string& path, const Tensor& t, bool gzip = false);

// MNIST (or Fashion-MNIST, which uses the same file names).
struct Mnist {
  Tensor train_images;  // uint8 [60000, 28, 28]
  Tensor train_labels;  // uint8 [60000]
  Tensor test_images;   // uint8 [10000, 28, 28]
  Tensor test_labels;   // uint8 [10000]
};

// Reads train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and
// t10k-labels-idx1-ubyte from `dir`, each optionally with a .gz suffix. Checks that images are 3-D,
// labels 1-D, and that each pair has the same count (the error names both files and both counts).
Mnist load_mnist(const std::string& dir);

struct CsvOptions {
  bool header = true;     // the first line holds column names and is skipped
  int label_column = 0;   // 0-based column of the integer label; -1 = no label column
  char delimiter = ',';
};

struct CsvData {
  Tensor features;  // float32 [N, F]: every column but the label column, in file order
  Tensor labels;    // int64 [N]; undefined when options.label_column == -1
};

// Reads a numeric CSV file such as mnist_train.csv (label, then 784 pixels). Empty lines are skipped,
// cells may be surrounded by spaces, "\r\n" line ends are accepted. Throws Error naming the file, the
// line (1-based, counting the header) and the column (1-based) of a non-numeric cell or of a row with
// the wrong number of cells.
CsvData read_csv(const std::string& path, const CsvOptions& options = {});

// A seeded permutation of [0, n): Fisher–Yates with Synapse's generator, the same on every machine.
// For splitting examples into train / validation / test.
std::vector<std::int64_t> permutation(std::int64_t n, std::uint64_t seed);

// ================================ datasets ================================

using Example = std::vector<Tensor>;

// One pass over a dataset.
class Iterator {
 public:
  virtual ~Iterator() = default;
  // The next example, or std::nullopt at the end of the pass.
  virtual std::optional<Example> next() = 0;
};

// What a dataset is made of: implement this for a custom dataset (see the notes at the top).
class Source {
 public:
  static constexpr std::int64_t kInfinite = -1;
  static constexpr std::int64_t kUnknown = -2;

  virtual ~Source() = default;
  // Starts a new pass (epoch).
  virtual std::unique_ptr<Iterator> iterate() const = 0;
  // Number of examples in one pass, or kInfinite / kUnknown.
  virtual std::int64_t size() const { return kUnknown; }
};

class Dataset {
 public:
  static constexpr std::int64_t kInfinite = Source::kInfinite;
  static constexpr std::int64_t kUnknown = Source::kUnknown;

  Dataset() = default;  // an empty handle: assign a real dataset before use
  explicit Dataset(std::shared_ptr<const Source> source);

  // Examples {t[0][i], t[1][i], ...}: the i-th row of every tensor (views, no copy). All tensors
  // must have at least one dimension and the same extent in dimension 0.
  static Dataset from_tensors(const std::vector<Tensor>& tensors);
  // Examples fn(0), fn(1), ..., fn(size - 1), computed when iterated.
  static Dataset from_function(std::int64_t size, std::function<Example(std::int64_t)> fn);

  // Starts a new pass (epoch). The iterator keeps the pipeline alive: it may outlive this handle.
  std::unique_ptr<Iterator> iterate() const;
  // Examples per pass, or kInfinite / kUnknown.
  std::int64_t size() const { return checked()->size(); }
  const std::shared_ptr<const Source>& source() const { return source_; }

  // tf.data's shuffle: keeps a buffer of `buffer_size` examples and emits a random one of them,
  // refilling from the input; buffer_size >= size() gives a uniform full shuffle. The same seed gives
  // the same orders; pass e (0, 1, ...) over the shuffled dataset uses a seed derived from (seed, e),
  // so every epoch has a new order unless reshuffle_each_epoch is false.
  Dataset shuffle(std::int64_t buffer_size, std::uint64_t seed, bool reshuffle_each_epoch = true) const;
  // Stacks `size` consecutive examples into one: component k of the batch has shape
  // [size, ...shape of component k]. The last, smaller batch is kept unless drop_remainder.
  Dataset batch(std::int64_t size, bool drop_remainder = false) const;
  // Repeats the dataset `count` times (-1: forever). A dataset that turns out empty ends the repetition.
  Dataset repeat(std::int64_t count = -1) const;
  // Applies fn to every example (lazily, when iterated).
  Dataset map(std::function<Example(Example)> fn) const;
  // The first n examples / all but the first n.
  Dataset take(std::int64_t n) const;
  Dataset skip(std::int64_t n) const;
  // Produces up to `n` examples ahead on a background thread, so the next batch is ready when the
  // consumer asks for it. Exceptions thrown while producing are rethrown by next(); destroying the
  // iterator mid-pass stops and joins the thread.
  Dataset prefetch(std::int64_t n = 2) const;

  // Range-for support: `for (const Example& e : ds)` runs one pass.
  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Example;
    using difference_type = std::ptrdiff_t;
    using pointer = const Example*;
    using reference = const Example&;

    iterator() = default;  // the end
    explicit iterator(std::shared_ptr<Iterator> it);
    reference operator*() const { return *current_; }
    pointer operator->() const { return &*current_; }
    iterator& operator++();
    void operator++(int) { ++*this; }
    bool operator==(const iterator& o) const { return !current_ && !o.current_; }

   private:
    std::shared_ptr<Iterator> it_;
    std::optional<Example> current_;
  };
  iterator begin() const { return iterator(std::shared_ptr<Iterator>(iterate())); }
  iterator end() const { return iterator(); }

 private:
  const std::shared_ptr<const Source>& checked() const;
  std::shared_ptr<const Source> source_;
};

// Splits tensors along dimension 0 into rows [0, n_first) and [n_first, N) (views, no copy), e.g.
// MNIST's classic 55000 / 5000 train / validation split:
//   auto [train, valid] = split({m.train_images, m.train_labels}, 55000);
std::pair<std::vector<Tensor>, std::vector<Tensor>> split(const std::vector<Tensor>& tensors, std::int64_t n_first);

// Stacks equally shaped tensors of one dtype into [rows.size(), ...shape] (one memcpy each).
Tensor stack_rows(const std::vector<Tensor>& rows);

// ================================ transforms ================================

// Any dtype -> float32 x / divisor (uint8 pixels -> [0, 1] by default).
Tensor scale(const Tensor& x, float divisor = 255.0f);

// Data augmentation, like Keras's RandomTranslation with fill_mode="constant": every image of a
// batch [N, H, W] or [N, H, W, C] (any dtype) moved by its own whole-pixel offset, dy down and dx
// right, each drawn uniformly from [-max_shift, max_shift]; what moves in from outside is 0. The
// offsets come from `seed` alone: the same seed gives the same batch, on any thread count. Throws for
// another rank or max_shift < 0 (naming the shape and the value).
//   FitOptions o; o.augment = [](const Tensor& x, std::uint64_t seed) { return data::random_translate(x, 2, seed); };
Tensor random_translate(const Tensor& images, std::int64_t max_shift, std::uint64_t seed);

// Per-feature normalisation with statistics learnt from training data.
//   auto norm = Normalizer::z_score(train_x);           // statistics over dim 0 of train_x
//   Tensor y = norm(test_x);                            // float32, (x - mean) / std
//   checkpoint["normalizer"] = norm.state();            // {"mean": ..., "std": ...}
//   auto again = Normalizer::from_state(norm.state());
// The statistics have the shape of one example (x.shape without dim 0), or are scalars when
// per_feature is false (one statistic over all elements). A feature with zero spread (std 0 or
// max == min) is only shifted: it maps to 0, never to NaN.
class Normalizer {
 public:
  enum class Kind { MinMax, ZScore };

  // Maps each feature to [0, 1]: (x - min) / (max - min).
  static Normalizer min_max(const Tensor& train, bool per_feature = true);
  // Maps each feature to mean 0, standard deviation 1: (x - mean) / std (population std).
  static Normalizer z_score(const Tensor& train, bool per_feature = true);
  // From state(): {"min", "max"} or {"mean", "std"} (float32 tensors of equal shape).
  static Normalizer from_state(const std::map<std::string, Tensor>& state);

  // x's trailing dimensions must equal the statistics' shape; returns float32 of x's shape.
  Tensor apply(const Tensor& x) const;
  Tensor operator()(const Tensor& x) const { return apply(x); }

  Kind kind() const { return kind_; }
  std::map<std::string, Tensor> state() const;

 private:
  Normalizer(Kind kind, Tensor shift, Tensor spread);
  Kind kind_;
  Tensor shift_;   // min or mean
  Tensor spread_;  // max or std (as stored, before the zero-spread fix)
};

}  // namespace synapse::data

// ================================ images and digits from the real world ================================
// (src/data/image.cpp, src/data/digits.cpp)
namespace synapse::data {

// An image file (PNG, JPEG, BMP, GIF, TGA, PNM; decoded by stb_image) or its bytes in memory:
// uint8 [H, W, C] with C = 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA; a 16-bit PNG gives int32 [H, W, C]
// with values 0..65535. Errors name the file (`name` for bytes) and what is wrong with it.
Tensor read_image(const std::string& path);
Tensor decode_image(const void* bytes, std::size_t size, const std::string& name = "image");
// A grey or colour image as PNG bytes / file: uint8 [H, W] or [H, W, C], or float32 [H, W] in [0, 1].
std::string encode_png(const Tensor& image);
void write_png(const std::string& path, const Tensor& image);
// The same pixels as JPEG (quality 1..100, stb_image_write's baseline encoder; 1 or 3 channels).
std::string encode_jpeg(const Tensor& image, int quality = 90);
// PNG or JPEG by the file's extension (.png, .jpg, .jpeg; case-insensitive); throws for another.
void write_image(const std::string& path, const Tensor& image, int jpeg_quality = 90);

// A photographed, scanned or drawn digit brought into MNIST's form, following how MNIST was made:
// the paper's brightness is estimated from the image's border (light or dark paper), paper texture and
// compression noise are thresholded away, the digit's bounding box is scaled to fit 20x20 keeping its
// aspect ratio (area averaging when shrinking), and the result is placed in 28x28 so that its centre
// of mass is the centre. `image` is read_image's result (uint8 or 16-bit int32 [H, W(, C)], alpha
// composited over a background that contrasts with the strokes) or float32 [H, W] in [0, 1]. Returns
// float32 [28, 28] in [0, 1], a white digit on black. Throws Error for an image without a digit (blank,
// or only noise), saying how much contrast it found.
Tensor mnist_style(const Tensor& image);

}  // namespace synapse::data

// ================================ colour images: CIFAR, image folders, augmentation ================================
// (src/data/cifar.cpp, src/data/image_folder.cpp, src/data/augment.cpp)
namespace synapse::data {

// ---- CIFAR-10 / CIFAR-100 binary files ----
// A CIFAR-10 record is 1 label byte + 3072 pixel bytes (1024 red, 1024 green, 1024 blue, each 32x32 row
// by row); a CIFAR-100 record has 2 label bytes (coarse, fine) first. Images come back channels last.
struct CifarData {
  Tensor images;         // float32 [N, 32, 32, 3] in [0, 1] (NHWC)
  Tensor labels;         // int64 [N]: CIFAR-10's class, CIFAR-100's fine label (0..99)
  Tensor coarse_labels;  // int64 [N]: CIFAR-100's superclass (0..19); undefined for CIFAR-10
};
// One file (data_batch_1.bin ... test_batch.bin, or CIFAR-100's train.bin / test.bin). Throws Error
// naming the file for a missing or empty file, a size that is not a whole number of records (with the
// byte counts) and a label out of range (with the record and the value).
CifarData read_cifar10(const std::string& path);
CifarData read_cifar100(const std::string& path);

struct Cifar {
  CifarData train, test;
};
// CIFAR-10's data_batch_1..5.bin (concatenated in order) and test_batch.bin from `dir` or from its
// subfolder cifar-10-batches-bin (what the official tarball unpacks to); CIFAR-100's train.bin and
// test.bin from `dir` or cifar-100-binary. Errors name the folder and the missing file.
Cifar load_cifar10(const std::string& dir);
Cifar load_cifar100(const std::string& dir);

// ---- a folder of images per class (Keras's image_dataset_from_directory) ----
//   root/cat/1.png, root/cat/2.jpg, root/dog/a.png, ...  ->  classes {"cat", "dog"}, labels 0 and 1
// Classes are the sub-folders, sorted by name; files with the extensions png, jpg, jpeg, bmp, gif (any
// case) are taken, sorted by name within a class. Every image is decoded, converted to `channels` (grey:
// TF's luminance 0.2989 R + 0.587 G + 0.114 B; alpha dropped; grey repeated for RGB) and resized to
// height x width with bilinear interpolation (half-pixel centres, TF2's resize), as float32 in [0, 1].
struct ImageFolderOptions {
  std::int64_t height = 256, width = 256;
  int channels = 3;               // 1 (grayscale) or 3 (rgb)
  double validation_split = 0.0;  // the fraction of the files held out, after a seeded shuffle
  std::uint64_t seed = 0;
};
enum class Subset { Training, Validation, All };

class ImageFolder {
 public:
  // Lists the files (nothing is decoded yet). Throws Error naming the root when it is missing or has no
  // class folder with images, or naming the class folder that has none.
  ImageFolder(std::string root, ImageFolderOptions options = {});
  const std::vector<std::string>& class_names() const { return classes_; }
  const ImageFolderOptions& options() const { return options_; }
  // The files of a subset and their labels. The shuffle is permutation(N, seed): the last
  // round(N * validation_split) files are the validation subset, the others the training subset, in
  // the permutation's order; All is every file in sorted order.
  std::vector<std::string> files(Subset s = Subset::All) const;
  std::vector<std::int64_t> labels(Subset s = Subset::All) const;
  // Examples {float32 [height, width, channels], int64 label}, each file decoded when the example is
  // produced: after .batch(n).prefetch(k) that is on the prefetch thread. A file that cannot be
  // decoded throws Error naming it.
  Dataset dataset(Subset s = Subset::All) const;
  // The whole subset decoded into {images [N, H, W, C], labels int64 [N]} (through dataset().prefetch).
  std::pair<Tensor, Tensor> load(Subset s = Subset::All) const;

 private:
  std::vector<std::size_t> indices(Subset s) const;
  std::string root_;
  ImageFolderOptions options_;
  std::vector<std::string> classes_, files_;
  std::vector<std::int64_t> labels_;
};

// One decoded image (read_image's uint8 or 16-bit int32 [H, W, C]) as float32 [height, width, channels]
// in [0, 1]: the conversion and resize ImageFolder applies.
Tensor to_float_image(const Tensor& image, std::int64_t height, std::int64_t width, int channels,
                      const std::string& name = "image");
// Bilinear resize of float32 [H, W, C] (half-pixel centres, TF2's tf.image.resize "bilinear").
Tensor resize_bilinear(const Tensor& image, std::int64_t height, std::int64_t width);

// ---- augmentation: seeded, batched transforms of float32 images [N, H, W, C] ----
// Each draws its random numbers per image, in order, from Generator(seed) alone: the same seed gives the
// same batch on any thread count. A Transform has FitOptions::augment's signature, so a composition can
// be passed to the trainer directly; compose() gives stage k the seed mix(seed, k).
//   auto aug = data::compose({data::augment::random_crop(32, 32, 4), data::augment::random_flip(),
//                             data::augment::random_brightness(0.25f)});
//   fo.augment = aug;   // runs on the trainer's prefetch thread
using Transform = std::function<Tensor(const Tensor& images, std::uint64_t seed)>;
Transform compose(std::vector<Transform> stages);

// Zero-pads each side by `padding`, then cuts a height x width window at a random offset (TF's
// random_crop after pad_to_bounding_box; the classic CIFAR crop is (32, 32, 4)).
Tensor random_crop(const Tensor& images, std::int64_t height, std::int64_t width, std::int64_t padding, std::uint64_t seed);
// Mirrors each image left-right (and/or top-bottom) with probability 1/2.
Tensor random_flip(const Tensor& images, std::uint64_t seed, bool horizontal = true, bool vertical = false);
// x + delta, delta uniform in [-max_delta, max_delta] per image (tf.image.random_brightness; no clipping).
Tensor random_brightness(const Tensor& images, float max_delta, std::uint64_t seed);
// (x - mean) * f + mean per image and channel, f uniform in [lower, upper] (tf.image.random_contrast).
Tensor random_contrast(const Tensor& images, float lower, float upper, std::uint64_t seed);
// RGB only: saturation times f uniform in [lower, upper], clipped to [0, 1] (tf.image.random_saturation).
Tensor random_saturation(const Tensor& images, float lower, float upper, std::uint64_t seed);
// RGB only: hue plus delta uniform in [-max_delta, max_delta] (in turns, max_delta <= 0.5), wrapping.
Tensor random_hue(const Tensor& images, float max_delta, std::uint64_t seed);
// (x - mean) / max(std, 1 / sqrt(H W C)) per image (tf.image.per_image_standardization; no randomness).
Tensor per_image_standardization(const Tensor& images);
// Rotation about the centre by an angle uniform in [-max_radians, max_radians]; zoom by a factor uniform
// in [lower, upper] (> 1 enlarges); both bilinear, what comes from outside the image is 0.
Tensor random_rotation(const Tensor& images, float max_radians, std::uint64_t seed);
Tensor random_zoom(const Tensor& images, float lower, float upper, std::uint64_t seed);

// The same transforms as Transform values, for compose() (Keras's preprocessing layers).
namespace augment {
Transform random_crop(std::int64_t height, std::int64_t width, std::int64_t padding);
Transform random_flip(bool horizontal = true, bool vertical = false);
Transform random_brightness(float max_delta);
Transform random_contrast(float lower, float upper);
Transform random_saturation(float lower, float upper);
Transform random_hue(float max_delta);
Transform per_image_standardization();
Transform random_rotation(float max_radians);
Transform random_zoom(float lower, float upper);
}  // namespace augment

}  // namespace synapse::data
