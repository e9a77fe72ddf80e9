#include "algorithms/mxnet_ndarray.h"

#include <algorithm>
#include <cstring>

#include "fmt/format.h"

namespace hearth::algorithms {

namespace {

constexpr std::uint64_t kListMagic = 0x112;
constexpr std::uint32_t kArrayMagicV1 = 0xF993FAC8;  // no storage type
constexpr std::uint32_t kArrayMagicV2 = 0xF993FAC9;
constexpr std::uint32_t kArrayMagicV3 = 0xF993FACA;
constexpr std::int32_t kDenseStorage = 0;
constexpr std::int32_t kCpu = 1;
constexpr std::int32_t kFloat32 = 0;
constexpr std::int32_t kFloat64 = 1;

template <typename T>
void Put(std::string* out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out->append(bytes, sizeof(T));
}

class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}

  template <typename T>
  Result<T> Get(std::string_view what) {
    T value;
    RETURN_IF_ERROR(Copy(&value, sizeof(T), what));
    return value;
  }

  Status Copy(void* out, std::size_t size, std::string_view what) {
    if (bytes_.size() - pos_ < size) {
      return InvalidArgument(
          fmt::format("NDArray file truncated at byte {} reading {}", pos_, what));
    }
    std::memcpy(out, bytes_.data() + pos_, size);
    pos_ += size;
    return Status::Ok();
  }

  std::size_t remaining() const { return bytes_.size() - pos_; }

 private:
  std::string_view bytes_;
  std::size_t pos_ = 0;
};

Result<NamedArray> DecodeArray(Reader& in, std::size_t index) {
  ASSIGN_OR_RETURN(std::uint32_t magic, in.Get<std::uint32_t>("an array header"));
  if (magic != kArrayMagicV1 && magic != kArrayMagicV2 && magic != kArrayMagicV3) {
    return InvalidArgument(fmt::format(
        "NDArray {} has header 0x{:08X}; only MXNet's v1/v2/v3 dense arrays are read", index,
        magic));
  }
  if (magic != kArrayMagicV1) {
    ASSIGN_OR_RETURN(std::int32_t storage, in.Get<std::int32_t>("the storage type"));
    if (storage != kDenseStorage) {
      return InvalidArgument(
          fmt::format("NDArray {} is sparse (storage type {})", index, storage));
    }
  }
  ASSIGN_OR_RETURN(std::uint32_t ndim, in.Get<std::uint32_t>("the shape"));
  if (ndim > 32) return InvalidArgument(fmt::format("NDArray {} has {} dimensions", index, ndim));
  NamedArray array;
  std::uint64_t count = 1;
  for (std::uint32_t i = 0; i < ndim; ++i) {
    ASSIGN_OR_RETURN(std::int64_t dim, in.Get<std::int64_t>("the shape"));
    if (dim < 0 ||
        (dim > 0 && count > (std::uint64_t{1} << 40) / static_cast<std::uint64_t>(dim))) {
      return InvalidArgument(fmt::format("NDArray {} has dimension {}", index, dim));
    }
    array.shape.push_back(dim);
    count *= static_cast<std::uint64_t>(dim);
  }
  if (ndim == 0) return array;  // MXNet writes nothing more for an empty array
  RETURN_IF_ERROR(in.Get<std::int32_t>("the device").status());
  RETURN_IF_ERROR(in.Get<std::int32_t>("the device").status());
  ASSIGN_OR_RETURN(std::int32_t type, in.Get<std::int32_t>("the data type"));
  const std::size_t width = type == kFloat32 ? 4 : type == kFloat64 ? 8 : 0;
  if (width == 0) {
    return InvalidArgument(
        fmt::format("NDArray {} has data type {}; only float32 and float64 are read", index, type));
  }
  if (in.remaining() / width < count) {
    return InvalidArgument(fmt::format("NDArray file truncated in the data of array {}", index));
  }
  array.values.resize(count);
  if (type == kFloat32) {
    RETURN_IF_ERROR(in.Copy(array.values.data(), count * 4, "data"));
  } else {
    std::vector<double> wide(count);
    RETURN_IF_ERROR(in.Copy(wide.data(), count * 8, "data"));
    for (std::size_t i = 0; i < count; ++i) array.values[i] = static_cast<float>(wide[i]);
  }
  return array;
}

}  // namespace

std::string EncodeNDArrayList(const std::vector<NamedArray>& arrays) {
  std::string out;
  Put<std::uint64_t>(&out, kListMagic);
  Put<std::uint64_t>(&out, 0);
  Put<std::uint64_t>(&out, arrays.size());
  for (const NamedArray& a : arrays) {
    Put<std::uint32_t>(&out, kArrayMagicV2);
    Put<std::int32_t>(&out, kDenseStorage);
    Put<std::uint32_t>(&out, static_cast<std::uint32_t>(a.shape.size()));
    for (std::int64_t d : a.shape) Put<std::int64_t>(&out, d);
    if (a.shape.empty()) continue;
    Put<std::int32_t>(&out, kCpu);
    Put<std::int32_t>(&out, 0);
    Put<std::int32_t>(&out, kFloat32);
    out.append(reinterpret_cast<const char*>(a.values.data()), a.values.size() * sizeof(float));
  }
  const bool named = std::any_of(arrays.begin(), arrays.end(),
                                [](const NamedArray& a) { return !a.name.empty(); });
  Put<std::uint64_t>(&out, named ? arrays.size() : 0);
  if (!named) return out;
  for (const NamedArray& a : arrays) {
    Put<std::uint64_t>(&out, a.name.size());
    out.append(a.name);
  }
  return out;
}

Result<std::vector<NamedArray>> DecodeNDArrayList(std::string_view bytes) {
  Reader in(bytes);
  ASSIGN_OR_RETURN(std::uint64_t magic, in.Get<std::uint64_t>("the file header"));
  if (magic != kListMagic) {
    return InvalidArgument(
        fmt::format("not an MXNet NDArray file (header 0x{:X}, expected 0x112)", magic));
  }
  RETURN_IF_ERROR(in.Get<std::uint64_t>("the file header").status());
  ASSIGN_OR_RETURN(std::uint64_t count, in.Get<std::uint64_t>("the array count"));
  if (count > in.remaining()) return InvalidArgument("NDArray file: implausible array count");
  std::vector<NamedArray> arrays;
  for (std::uint64_t i = 0; i < count; ++i) {
    ASSIGN_OR_RETURN(NamedArray a, DecodeArray(in, i));
    arrays.push_back(std::move(a));
  }
  ASSIGN_OR_RETURN(std::uint64_t names, in.Get<std::uint64_t>("the name count"));
  if (names != 0 && names != count) {
    return InvalidArgument(fmt::format("NDArray file holds {} arrays but {} names", count, names));
  }
  for (std::uint64_t i = 0; i < names; ++i) {
    ASSIGN_OR_RETURN(std::uint64_t length, in.Get<std::uint64_t>("a name"));
    if (length > in.remaining()) return InvalidArgument("NDArray file truncated in a name");
    arrays[i].name.resize(length);
    RETURN_IF_ERROR(in.Copy(arrays[i].name.data(), length, "a name"));
  }
  return arrays;
}

}  // namespace hearth::algorithms
