using Xunit;

namespace Equinas.MLNet.Orleans.Tests;

/// <summary>The data as they travel to the workers: bit-exact, chunked, checked by hash, cached once.</summary>
public sealed class DatasetTransferTests
{
    [Fact]
    public void Chunked_data_arrive_bit_for_bit_and_a_damaged_upload_is_refused_naming_both_hashes()
    {
        using var train = TinySearch.Motifs(40, 3, 12, seed: 1);
        using var validation = TinySearch.Motifs(20, 3, 12, seed: 2);
        var data = DatasetTransfer.Encode(train, validation);
        Assert.Equal(64, data.Hash.Length);
        Assert.Equal(data.Hash, DatasetTransfer.Encode(train, validation).Hash);

        using var cache = new DatasetCache();
        Assert.False(cache.Has(data.Hash));
        // Three uneven chunks, out of order: the last one to arrive completes the upload.
        var bytes = data.Bytes;
        int third = bytes.Length / 3;
        var chunks = new[] { bytes[..third], bytes[third..(2 * third)], bytes[(2 * third)..] };
        cache.Store(data.Hash, 2, 3, chunks[2]);
        cache.Store(data.Hash, 0, 3, chunks[0]);
        Assert.False(cache.Has(data.Hash));
        cache.Store(data.Hash, 1, 3, chunks[1]);
        Assert.True(cache.Has(data.Hash));
        Assert.Equal(1, cache.Uploads);
        using (var lease = cache.Acquire(data.Hash))
        {
            Assert.Equal(train.Images.data<float>().ToArray(), lease.Train.Images.data<float>().ToArray());
            Assert.Equal(train.Labels.data<long>().ToArray(), lease.Train.Labels.data<long>().ToArray());
            Assert.Equal(validation.Images.data<float>().ToArray(), lease.Validation.Images.data<float>().ToArray());
            Assert.Equal(3, lease.Validation.Classes);
        }

        // Stored again (another driver): nothing changes.
        cache.Store(data.Hash, 0, 1, bytes);
        Assert.Equal(1, cache.Uploads);

        var damaged = (byte[])bytes.Clone();
        damaged[^1] ^= 1;
        var error = Assert.Throws<InvalidDataException>(() => cache.Store("0" + data.Hash[1..], 0, 1, damaged));
        Assert.Contains(DatasetTransfer.HashOf(damaged), error.Message, StringComparison.Ordinal);
        Assert.Contains("0" + data.Hash[1..], error.Message, StringComparison.Ordinal);
        Assert.Throws<DatasetMissingException>(() => cache.Acquire("0" + data.Hash[1..]));
    }

    [Fact]
    public void The_cache_keeps_its_capacity_and_never_evicts_a_dataset_in_use()
    {
        using var cache = new DatasetCache(capacity: 1);
        var sets = Enumerable.Range(0, 3).Select(i =>
        {
            using var train = TinySearch.Motifs(10, 3, 8, seed: i);
            using var validation = TinySearch.Motifs(5, 3, 8, seed: 10 + i);
            return DatasetTransfer.Encode(train, validation);
        }).ToArray();
        cache.Store(sets[0].Hash, 0, 1, sets[0].Bytes);
        using (var lease = cache.Acquire(sets[0].Hash))
        {
            cache.Store(sets[1].Hash, 0, 1, sets[1].Bytes);
            // Over capacity, but the first is in use: both stay.
            Assert.True(cache.Has(sets[0].Hash));
            Assert.True(cache.Has(sets[1].Hash));
        }

        // Released: the least recently used goes.
        Assert.False(cache.Has(sets[0].Hash));
        cache.Store(sets[2].Hash, 0, 1, sets[2].Bytes);
        Assert.False(cache.Has(sets[1].Hash));
        Assert.True(cache.Has(sets[2].Hash));
    }
}
